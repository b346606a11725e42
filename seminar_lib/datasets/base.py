"""The common shape every dataset loads into."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError, require_columns

TIMESTAMP_DTYPE = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class RecDataset:
    """A loaded dataset.

    Attributes:
        name: registry name, e.g. ``"ml-100k"``.
        interactions: one row per event with ``user_id`` and ``item_id`` (integers),
            ``timestamp`` (``Datetime[us, UTC]``), ``weight`` (``Float64``) and
            dataset-specific columns (e.g. ``rating``).
        users: user features keyed by unique ``user_id`` (columns documented by each loader), or None.
        items: item features keyed by unique ``item_id``, or None.
        description: one paragraph for the dataset card.
    """

    name: str
    interactions: pl.DataFrame
    users: pl.DataFrame | None = None
    items: pl.DataFrame | None = None
    description: str = ""

    def __post_init__(self) -> None:
        validate_interactions(self.interactions, f"{self.name} interactions")
        for table, key in ((self.users, Columns.user), (self.items, Columns.item)):
            if table is None:
                continue
            require_columns(table.columns, [key], f"{self.name} {key.split('_')[0]}s table")
            if table[key].n_unique() != table.height:
                raise SchemaError(f"{self.name}: {key} is not unique in the feature table")

    @property
    def n_users(self) -> int:
        return self.interactions[Columns.user].n_unique()

    @property
    def n_items(self) -> int:
        return self.interactions[Columns.item].n_unique()

    def summary(self) -> pl.DataFrame:
        """Dataset card: users, items, interactions, density and time range (one row per statistic)."""
        inter = self.interactions
        n = inter.height
        ts = inter[Columns.timestamp]
        stats = {
            "users": f"{self.n_users:,}",
            "items": f"{self.n_items:,}",
            "interactions": f"{n:,}",
            "density": f"{n / max(self.n_users * self.n_items, 1):.4%}",
            "interactions per user (median)": f"{inter.group_by(Columns.user).len()['len'].median():.0f}",
            "first event": str(ts.min())[:10] if n else "-",
            "last event": str(ts.max())[:10] if n else "-",
            "user features": ", ".join(c for c in (self.users.columns if self.users is not None else [])
                                       if c != Columns.user) or "-",
            "item features": _short_list([c for c in (self.items.columns if self.items is not None else [])
                                          if c != Columns.item]),
        }
        return pl.DataFrame({"statistic": list(stats), "value": list(stats.values())})


def _short_list(names: list[str], limit: int = 8) -> str:
    if not names:
        return "-"
    head = ", ".join(names[:limit])
    return head if len(names) <= limit else f"{head}, … ({len(names)} in all)"


def validate_interactions(df: pl.DataFrame, what: str = "interactions") -> None:
    """Check the common interactions schema; raise :class:`SchemaError` saying what is wrong.

    Required: ``user_id``, ``item_id`` (integer or string, no nulls), ``timestamp``
    (``Datetime`` in UTC), ``weight`` (float, no nulls).
    """
    require_columns(df.columns, Columns.interactions, what)
    schema = df.schema
    for col in (Columns.user, Columns.item):
        if not (schema[col].is_integer() or schema[col] == pl.String):
            raise SchemaError(f"{what}: column {col!r} must hold integer or string ids, got {schema[col]}")
    ts = schema[Columns.timestamp]
    if not (isinstance(ts, pl.Datetime) and ts.time_zone == "UTC"):
        raise SchemaError(
            f"{what}: column 'timestamp' must be Datetime in UTC, got {ts}; "
            "convert with pl.from_epoch(...).dt.replace_time_zone('UTC') or .dt.convert_time_zone('UTC')"
        )
    if not schema[Columns.weight].is_float():
        raise SchemaError(f"{what}: column 'weight' must be a float column, got {schema[Columns.weight]}")
    nulls = df.select(pl.col(list(Columns.interactions)).null_count()).row(0, named=True)
    bad = {c: n for c, n in nulls.items() if n}
    if bad:
        raise SchemaError(f"{what}: null values in {bad}; drop or fill them before building a dataset")


def make_interactions(
    df: pl.DataFrame,
    *,
    user: str = Columns.user,
    item: str = Columns.item,
    timestamp: str = Columns.timestamp,
    weight: str | float = 1.0,
    extra: list[str] | tuple[str, ...] = (),
) -> pl.DataFrame:
    """Bring a table into the common interactions shape.

    ``timestamp`` may be integer Unix seconds, a date or a datetime; ``weight`` is a column name or a
    constant. Columns in ``extra`` are kept after the four common ones.
    """
    needed = [user, item, timestamp, *extra] + ([weight] if isinstance(weight, str) else [])
    require_columns(df.columns, needed, "interactions source table")
    ts = pl.col(timestamp)
    dtype = df.schema[timestamp]
    if dtype.is_integer():
        ts_expr = pl.from_epoch(ts, time_unit="s")
    elif dtype == pl.Date:
        ts_expr = ts.cast(pl.Datetime("us"))
    elif isinstance(dtype, pl.Datetime):
        ts_expr = ts.dt.cast_time_unit("us")
        if dtype.time_zone is not None:
            ts_expr = ts_expr.dt.convert_time_zone("UTC")
    else:
        raise SchemaError(f"timestamp column {timestamp!r} has type {dtype}; expected Unix seconds, Date or Datetime")
    if not (isinstance(dtype, pl.Datetime) and dtype.time_zone is not None):
        ts_expr = ts_expr.dt.replace_time_zone("UTC")
    w_expr = pl.col(weight) if isinstance(weight, str) else pl.lit(weight)
    return df.select(
        pl.col(user).alias(Columns.user),
        pl.col(item).alias(Columns.item),
        ts_expr.cast(TIMESTAMP_DTYPE).alias(Columns.timestamp),
        w_expr.cast(pl.Float64).alias(Columns.weight),
        *[pl.col(c) for c in extra],
    )
