"""Ozon orders — the baselines seminar's private parquet files, loaded from a user-given folder."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from seminar_lib.datasets.base import RecDataset, make_interactions
from seminar_lib.datasets.registry import DatasetSpec, register
from seminar_lib.errors import DatasetError, SchemaError

ORDER_COLUMNS = ("user_id", "product_id", "date")
PRODUCT_COLUMNS = ("product_id", "name", "brand", "type", "category_id", "category_name")


def find_parquet(folder: Path, stem: str) -> Path | None:
    """``stem``, ``stem.parquet`` or a folder ``stem/`` of parquet parts, whichever exists."""
    for candidate in (folder / stem, folder / f"{stem}.parquet"):
        if candidate.is_dir():
            return candidate
        if candidate.is_file():
            return candidate
    return None


def _read(path: Path, required: tuple[str, ...]) -> pl.DataFrame:
    source = path / "*.parquet" if path.is_dir() else path
    try:
        df = pl.read_parquet(source)
    except (pl.exceptions.PolarsError, OSError) as exc:
        raise SchemaError(f"{path}: not a readable parquet file: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; found {df.columns}")
    return df


def parse_ozon(folder: Path) -> RecDataset:
    """Load ``train_orders`` and ``test_orders`` (``user_id, product_id, date``) and, if present,
    ``product_information_full`` (``product_id, name, brand, type, category_id, category_name``).

    ``interactions``: both order tables, ``item_id = product_id``, ``timestamp`` = order date
    (midnight UTC), ``weight = 1.0``, and ``part`` (``"train"`` / ``"test"``, the original seminar's split).
    Repeat purchases are kept as separate rows. ``items``: the product table with ``item_id``.
    """
    parts = []
    for part in ("train", "test"):
        path = find_parquet(folder, f"{part}_orders")
        if path is None:
            raise DatasetError(f"ozon: {folder} has no {part}_orders (a parquet file or folder with columns "
                               f"{list(ORDER_COLUMNS)}); pass data_dir= pointing at the seminar's data folder")
        orders = _read(path, ORDER_COLUMNS).with_columns(pl.lit(part).alias("part"))
        parts.append(orders.select(*ORDER_COLUMNS, "part"))
    orders = pl.concat(parts).with_columns(pl.col("user_id").cast(pl.Int64), pl.col("product_id").cast(pl.Int64))
    interactions = make_interactions(orders, item="product_id", timestamp="date", extra=["part"])
    products = find_parquet(folder, "product_information_full")
    items = None
    if products is not None:
        items = (_read(products, PRODUCT_COLUMNS).rename({"product_id": "item_id"})
                 .with_columns(pl.col("item_id").cast(pl.Int64)).unique("item_id", keep="first", maintain_order=True))
    return RecDataset("ozon", interactions, None, items,
                      description="Ozon orders (private, from the baselines seminar): purchases with repeat orders.")


register(DatasetSpec(
    name="ozon",
    description="Ozon orders: the baselines seminar's private parquet files (train_orders, test_orders, "
                "product_information_full)",
    parser=parse_ozon,
    source="local",
    license_note="The files are private to the seminar's participants and are never downloaded or committed.",
))
