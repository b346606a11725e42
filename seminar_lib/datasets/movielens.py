"""MovieLens 100K and 1M (GroupLens): parsers and registry entries.

Both give ``interactions`` with ``rating`` (1–5) kept as a column and ``weight = 1.0`` (the
course treats every rating as an implicit "watched" event).
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from seminar_lib.datasets.base import RecDataset, make_interactions
from seminar_lib.datasets.parsing import read_delimited
from seminar_lib.datasets.registry import DatasetSpec, register
from seminar_lib.feature_specs import FeaturePreset, binned, buckets, category, multi

LICENSE = (
    "MovieLens data are licensed by GroupLens for research use only and may not be redistributed: "
    "never commit the files; each user downloads them (https://grouplens.org/datasets/movielens/)."
)

ML1M_OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student", "lawyer", "programmer",
    "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer", "tradesman/craftsman",
    "unemployed", "writer",
)


def genre_column(genre: str) -> str:
    """``"Children's"`` → ``"genre_childrens"``, ``"Film-Noir"`` → ``"genre_film_noir"``."""
    return "genre_" + re.sub(r"[^a-z0-9]+", "_", genre.lower().replace("'", "")).strip("_")


def parse_ml100k(folder: Path) -> RecDataset:
    """Parse the ML-100K files ``u.data``, ``u.item``, ``u.user``, ``u.genre``.

    ``users``: ``user_id, age, gender, occupation, zip_code``.
    ``items``: ``item_id, title, release_date, year, imdb_url, genres`` (list of names) and one
    ``genre_<name>`` 0/1 flag per genre (19, including ``genre_unknown``).
    """
    ratings = read_delimited(folder / "u.data", {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Int8,
                                                 "timestamp": pl.Int64}, separator="\t", fmt=" (u.data)")
    interactions = make_interactions(ratings, extra=["rating"])
    genres = read_delimited(folder / "u.genre", {"genre": pl.String, "index": pl.Int64}, separator="|")["genre"].to_list()
    item_cols: dict[str, pl.DataType] = {"item_id": pl.Int64, "title": pl.String, "release_date": pl.String,
                                         "video_release_date": pl.String, "imdb_url": pl.String}
    item_cols |= {genre_column(g): pl.Int8 for g in genres}
    items = read_delimited(folder / "u.item", item_cols, separator="|", encoding="latin-1")
    release = pl.col("release_date").str.to_date("%d-%b-%Y", strict=False)
    items = items.with_columns(release.alias("release_date")).with_columns(
        pl.col("release_date").dt.year().cast(pl.Int32).alias("year")
    )
    items = _with_genre_list(items.drop("video_release_date"), genres)
    items = items.select("item_id", "title", "release_date", "year", "imdb_url", "genres",
                         *[genre_column(g) for g in genres])
    users = read_delimited(folder / "u.user", {"user_id": pl.Int64, "age": pl.Int32, "gender": pl.String,
                                              "occupation": pl.String, "zip_code": pl.String}, separator="|")
    return RecDataset(
        "ml-100k", interactions, users, items,
        description="MovieLens 100K: 100,000 ratings (1–5) of 1,682 movies by 943 users, Sep 1997 – Apr 1998; "
                    "every user has at least 20 ratings.",
    )


def parse_ml1m(folder: Path) -> RecDataset:
    """Parse the ML-1M files ``ratings.dat``, ``movies.dat``, ``users.dat`` (``::``-separated, latin-1).

    ``users``: ``user_id, gender, age`` (the bucket's lower bound: 1, 18, 25, 35, 45, 50, 56),
    ``occupation`` (name), ``zip_code``. ``items``: ``item_id, title, year, genres`` (list) and
    one ``genre_<name>`` 0/1 flag per genre.
    """
    ratings = read_delimited(folder / "ratings.dat", {"user_id": pl.Int64, "item_id": pl.Int64, "rating": pl.Int8,
                                                      "timestamp": pl.Int64}, separator="::", encoding="latin-1")
    interactions = make_interactions(ratings, extra=["rating"])
    movies = read_delimited(folder / "movies.dat", {"item_id": pl.Int64, "title": pl.String, "genre_names": pl.String},
                            separator="::", encoding="latin-1")
    genres = sorted(set(movies["genre_names"].str.split("|").explode().drop_nulls().to_list()) - {""})
    items = movies.with_columns(
        pl.col("title").str.extract(r"\((\d{4})\)\s*$").cast(pl.Int32).alias("year"),
        pl.col("genre_names").str.split("|").alias("genres"),
    )
    items = items.with_columns(
        [pl.col("genres").list.contains(g).cast(pl.Int8).alias(genre_column(g)) for g in genres]
    ).select("item_id", "title", "year", "genres", *[genre_column(g) for g in genres])
    users = read_delimited(folder / "users.dat", {"user_id": pl.Int64, "gender": pl.String, "age": pl.Int32,
                                                 "occupation": pl.Int32, "zip_code": pl.String},
                           separator="::", encoding="latin-1")
    users = users.with_columns(
        pl.col("occupation").replace_strict(list(range(len(ML1M_OCCUPATIONS))), list(ML1M_OCCUPATIONS),
                                            default="other", return_dtype=pl.String)
    )
    return RecDataset(
        "ml-1m", interactions, users, items,
        description="MovieLens 1M: 1,000,209 ratings (1–5) of ~3,900 movies by 6,040 users, 2000–2003; "
                    "every user has at least 20 ratings.",
    )


def _with_genre_list(items: pl.DataFrame, genres: list[str]) -> pl.DataFrame:
    flags = [genre_column(g) for g in genres]
    names = pl.concat_list([pl.when(pl.col(f) == 1).then(pl.lit(g)).otherwise(None) for f, g in zip(flags, genres)])
    return items.with_columns(names.list.drop_nulls().alias("genres"))


register(DatasetSpec(
    name="ml-100k",
    description="MovieLens 100K ratings with user demographics and movie genres (the course default)",
    parser=parse_ml100k,
    url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    archive_sha256="50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
    archive_root="ml-100k",
    files={
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
        "u.user": "f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c",
        "u.genre": "9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb",
    },
    license_note=LICENSE,
    features=FeaturePreset(
        users=(buckets("age", (18, 25, 35, 45, 50, 56)), category("gender"), category("occupation")),
        items=(multi("genres"), binned("year", 10, name="decade")),
        description="users: age in ML-1M's buckets, gender, occupation; items: genres (multi-hot), decade",
    ),
))

# The archive hash is TensorFlow Datasets' recorded checksum of ml-1m.zip; the extracted files'
# hashes are recorded in SHA256SUMS at download time (after the archive is verified).
register(DatasetSpec(
    name="ml-1m",
    description="MovieLens 1M ratings with user demographics and movie genres (the SASRec seminar's dataset)",
    parser=parse_ml1m,
    url="https://files.grouplens.org/datasets/movielens/ml-1m.zip",
    archive_sha256="a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
    archive_root="ml-1m",
    files={"ratings.dat": None, "movies.dat": None, "users.dat": None},
    license_note=LICENSE,
    features=FeaturePreset(
        users=(category("age"), category("gender"), category("occupation")),
        items=(multi("genres"), binned("year", 10, name="decade")),
        description="users: age bucket (as in the file), gender, occupation; items: genres, decade",
    ),
))

__all__ = ["parse_ml100k", "parse_ml1m", "genre_column"]
