"""Which columns of a feature table become tokens, and how: declarations only, no tensors.

A :class:`Feature` is built with :func:`category`, :func:`buckets`, :func:`binned` or :func:`multi`; a
:class:`FeaturePreset` names a dataset's user and item features (each dataset's registry entry,
:class:`~seminar_lib.datasets.registry.DatasetSpec`, holds its preset). :mod:`seminar_lib.features` encodes
them (``FeatureEncoder``) and re-exports these names — the one place a notebook imports them from. This
module has no torch, so the dataset registry can hold presets without loading it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from seminar_lib.errors import SchemaError

Kind = Literal["category", "buckets", "binned", "multi"]


# ------------------------------------------------------------------------------------------ features
@dataclass(frozen=True)
class Feature:
    """How one column becomes tokens; build it with :func:`category`, :func:`buckets`, :func:`binned`
    or :func:`multi`. ``name`` prefixes its token names (``name=value``)."""

    column: str
    kind: Kind
    name: str
    edges: tuple[float, ...] = ()
    width: float | None = None
    separator: str | None = None

    def values(self, table: pl.DataFrame) -> pl.Series:
        """The column's values as tokens: ``String`` (one per row, null = unknown) or, for
        :func:`multi`, ``List[String]`` (null or empty = unknown)."""
        col = table[self.column]
        if self.kind == "category":
            return col.cast(pl.String)
        if self.kind == "multi":
            if col.dtype == pl.String:
                if self.separator is None:
                    raise SchemaError(f"feature {self.name!r}: column {self.column!r} is a string; "
                                      "give multi(..., separator=',') to split it into values")
                col = col.str.split(self.separator).list.eval(pl.element().str.strip_chars())
            if not isinstance(col.dtype, pl.List):
                raise SchemaError(f"feature {self.name!r}: multi() needs a list (or separated string) column, "
                                  f"{self.column!r} is {col.dtype}")
            return col.list.eval(pl.element().cast(pl.String)).list.eval(pl.element().filter(pl.element() != ""))
        if not col.dtype.is_numeric():
            raise SchemaError(f"feature {self.name!r}: {self.kind}() needs a numeric column, "
                              f"{self.column!r} is {col.dtype}")
        x = col.cast(pl.Float64).to_numpy()  # nulls → NaN
        finite = np.isfinite(x)
        if self.kind == "binned":
            low = np.floor(np.where(finite, x, 0.0) / self.width) * self.width
            labels = np.array([f"{v:g}" for v in low], dtype=object)
        else:  # buckets
            bucket = np.searchsorted(np.asarray(self.edges), np.where(finite, x, 0.0), side="right")  # 0: < edges[0]
            labels = np.array(self.bucket_labels(), dtype=object)[bucket]
        return pl.Series(self.column, np.where(finite, labels, None).tolist(), dtype=pl.String)

    def bucket_labels(self) -> list[str]:
        """For :func:`buckets`: the interval names, lowest first."""
        e = self.edges
        return [f"< {e[0]:g}"] + [f"[{lo:g}, {hi:g})" for lo, hi in zip(e[:-1], e[1:])] + [f">= {e[-1]:g}"]

    def sort_vocabulary(self, values: pl.Series) -> pl.Series:
        """Distinct values in a readable order: intervals and bins by their numbers, the rest as text."""
        values = values.drop_nulls().unique()
        if self.kind == "buckets":
            rank = {label: r for r, label in enumerate(self.bucket_labels())}
            return pl.Series(values.name, sorted(values.to_list(), key=rank.__getitem__), dtype=pl.String)
        if self.kind == "binned":
            return pl.Series(values.name, sorted(values.to_list(), key=float), dtype=pl.String)
        return values.sort()


def category(column: str, name: str | None = None) -> Feature:
    """A categorical column: every distinct value (as text) is a token."""
    return Feature(column, "category", name or column)


def buckets(column: str, edges: Sequence[float], name: str | None = None) -> Feature:
    """A numeric column cut at increasing ``edges`` into ``(-inf, e0), [e0, e1), …, [e_last, inf)``."""
    edges = tuple(float(e) for e in edges)
    if not edges or any(b <= a for a, b in zip(edges[:-1], edges[1:])):
        raise ValueError(f"buckets({column!r}): edges must be a non-empty increasing sequence, got {edges}")
    return Feature(column, "buckets", name or column, edges=edges)


def binned(column: str, width: float, name: str | None = None) -> Feature:
    """A numeric column floored to a multiple of ``width`` (``binned("year", 10)``: decades)."""
    if not width > 0:
        raise ValueError(f"binned({column!r}): width must be positive, got {width!r}")
    return Feature(column, "binned", name or column, width=float(width))


def multi(column: str, separator: str | None = None, name: str | None = None) -> Feature:
    """A list column (or a string split by ``separator``): one token per element (multi-hot)."""
    return Feature(column, "multi", name or column, separator=separator)


@dataclass(frozen=True)
class FeaturePreset:
    """Which user and item columns a dataset's feature tables contribute (either may be empty)."""

    users: tuple[Feature, ...] = ()
    items: tuple[Feature, ...] = ()
    description: str = ""
