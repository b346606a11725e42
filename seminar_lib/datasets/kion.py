"""KION (MTS online cinema) — the DSSM and RecTools seminars' dataset."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from seminar_lib.datasets.base import RecDataset, make_interactions
from seminar_lib.datasets.parsing import read_csv_checked
from seminar_lib.datasets.registry import DatasetSpec, register
from seminar_lib.feature_specs import FeaturePreset, binned, category, multi
from seminar_lib.errors import SchemaError

INTERACTION_COLUMNS = ("user_id", "item_id", "last_watch_dt", "total_dur", "watched_pct")
USER_COLUMNS = ("user_id", "age", "income", "sex", "kids_flg")
ITEM_COLUMNS = ("item_id", "content_type", "title", "title_orig", "release_year", "genres", "countries",
                "for_kids", "age_rating", "studios", "directors", "actors", "description", "keywords")


def parse_kion(folder: Path) -> RecDataset:
    """Parse ``interactions.csv``, ``users.csv`` and ``items.csv`` of the KION archive.

    ``interactions``: ``weight`` is ``watched_pct`` (0–100), as in the original seminars; ``total_dur``
    (seconds watched) and ``watched_pct`` are kept; ``timestamp`` is ``last_watch_dt`` (a date,
    at midnight UTC). Rows without ``watched_pct`` are dropped (the original seminars drop them too).
    ``users``: ``user_id, age, income, sex`` (bucket strings as in the file, e.g. ``age_25_34``),
    ``kids_flg``. ``items``: the file's columns, ``genres``/``countries``/``studios`` kept as
    comma-separated strings plus ``genre_list`` (a list of genre names).
    """
    raw = read_csv_checked(folder / "interactions.csv", INTERACTION_COLUMNS,
                           schema_overrides={"user_id": pl.Int64, "item_id": pl.Int64, "last_watch_dt": pl.String,
                                             "total_dur": pl.Int64, "watched_pct": pl.Float64})
    dates = raw["last_watch_dt"].str.to_date("%Y-%m-%d", strict=False)
    bad = (dates.is_null() & raw["last_watch_dt"].is_not_null()).arg_true()
    if len(bad):
        raise SchemaError(f"{folder / 'interactions.csv'}, data row {bad[0] + 1}: last_watch_dt "
                          f"{raw['last_watch_dt'][bad[0]]!r} is not a YYYY-MM-DD date")
    raw = raw.with_columns(dates.alias("last_watch_dt")).drop_nulls(["watched_pct", "last_watch_dt"])
    interactions = make_interactions(raw, timestamp="last_watch_dt", weight="watched_pct",
                                     extra=["total_dur", "watched_pct"])
    users = read_csv_checked(folder / "users.csv", USER_COLUMNS,
                             schema_overrides={"user_id": pl.Int64}).select(USER_COLUMNS)
    items = read_csv_checked(folder / "items.csv", ITEM_COLUMNS, schema_overrides={"item_id": pl.Int64})
    items = items.with_columns(
        pl.col("genres").str.split(",").list.eval(pl.element().str.strip_chars()).alias("genre_list")
    )
    return RecDataset(
        "kion", interactions, users.unique("user_id", keep="first", maintain_order=True), items,
        description="KION (MTS): ~5.5M views of ~15.7k films and series by ~960k users, Mar–Aug 2021, "
                    "with user demographics and rich item metadata.",
    )


# No reference SHA-256 of this archive is published; its files' hashes are recorded in SHA256SUMS
# when it is first downloaded, and later loads are verified against them.
register(DatasetSpec(
    name="kion",
    description="KION online-cinema views (MTS) with user and item features (the DSSM/RecTools seminars' dataset)",
    parser=parse_kion,
    url="https://github.com/irsafilo/KION_DATASET/raw/f69775be31fa5779907cf0a92ddedb70037fb5ae/data_original.zip",
    archive_root="data_original",
    files={"interactions.csv": None, "users.csv": None, "items.csv": None},
    license_note="KION is published by MTS for research and education (https://github.com/irsafilo/KION_DATASET).",
    features=FeaturePreset(
        users=(category("age"), category("income"), category("sex"), category("kids_flg")),
        items=(category("content_type"), multi("genres", separator=","), category("age_rating"),
               category("for_kids"), multi("countries", separator=","), binned("release_year", 10, name="decade")),
        description="the original seminar's columns — users: age, income, sex, kids_flg; items: content_type, genres, "
                    "age_rating, for_kids, countries, decade of release_year",
    ),
))
