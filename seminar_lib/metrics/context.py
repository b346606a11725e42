"""Shared, validated inputs of the metrics, encoded once as integer arrays and reused for all metrics and k.

User and item ids (any type) are mapped to dense codes ``0 … n−1`` in id order — compact non-negative
integer ids are their own codes — so every join of the metrics becomes an integer look-up: a (user, item)
pair is the key ``user·n_items + item``, "is this recommendation relevant" is one hash ``is_in`` of those
keys, and a per-user sum is a ``numpy.bincount`` over user codes.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError, require_columns

U, I, R = Columns.user, Columns.item, Columns.rank


class Codes:
    """One code space for the values of several id columns: ``codes[j]`` (int64 arrays, one per column)
    and ``n`` codes; :meth:`decode` maps codes back to ids. Codes follow the sorted order of the ids.

    Non-negative integer ids no larger than a few times the number of values are their own codes (no
    hashing); other ids (strings, sparse or negative integers) are encoded through their sorted distinct values.
    """

    def __init__(self, columns: list[pl.Series]):
        self.dtypes = [c.dtype for c in columns]
        total = sum(c.len() for c in columns)
        present = [c for c in columns if c.len()]
        if present and all(c.dtype.is_integer() for c in present) and all(c.null_count() == 0 for c in present):
            low = min(int(c.min()) for c in present)
            high = max(int(c.max()) for c in present)
            if low >= 0 and high < 4 * total + 1024:
                self.codes = [c.to_numpy().astype(np.int64, copy=False) for c in columns]
                self.n = high + 1
                self._values = None
                return
        frames = [pl.DataFrame({"id": c}) for c in columns]
        values = pl.concat([f.unique() for f in frames], how="vertical_relaxed").unique().sort("id")
        lookup = values.with_columns(pl.int_range(pl.len(), dtype=pl.Int64).alias("code"))
        self.codes = [f.with_columns(pl.col("id").cast(values.schema["id"]))
                      .join(lookup, on="id", how="left", maintain_order="left")["code"].to_numpy() for f in frames]
        self.n = values.height
        self._values = values["id"]

    def decode(self, codes: np.ndarray, dtype: pl.DataType) -> pl.Series:
        """The ids of ``codes``, as ``dtype``."""
        if self._values is None:
            return pl.Series(codes, dtype=pl.Int64).cast(dtype)
        return self._values.gather(codes).cast(dtype)


class EvalContext:
    """Inputs of :func:`seminar_lib.metrics.evaluate` and their derived arrays.

    Args:
        recos: ``user_id, item_id, rank`` (rank starts at 1; other columns are ignored).
        test: held-out interactions ``user_id, item_id`` (duplicate pairs count once).
        train: interactions seen before the test ("previous interactions"): item popularity for
            novelty, serendipity and popularity metrics, and the default catalogue.
        catalog: ids of the items that can be recommended; default: the items of ``train``.
        ref_recos: a reference model's recommendations for Intersection.
        max_k: the largest cut-off that will be asked for (rows ranked below it are dropped once).

    Every table is encoded once (:class:`Codes`, one space for users and one for items); the arrays
    below are what the metrics in :mod:`~seminar_lib.metrics.definitions` read.
    """

    def __init__(self, recos: pl.DataFrame, test: pl.DataFrame | None = None, train: pl.DataFrame | None = None,
                 catalog: pl.Series | list | np.ndarray | None = None, ref_recos: pl.DataFrame | None = None,
                 max_k: int = 10):
        self.recos = _check_recos(recos, "recos", max_k)
        self.test = None
        if test is not None:
            require_columns(test.columns, (U, I), "test interactions")
            self.test = test.select(U, I)
        self.train = None
        if train is not None:
            require_columns(train.columns, (U, I), "train interactions")
            self.train = train.select(U, I)
        self._catalog = None if catalog is None else pl.Series(I, catalog).unique()
        self.ref_recos = None if ref_recos is None else _check_recos(ref_recos, "ref_recos", max_k)
        tables = [t for t in (self.recos, self.test, self.train, self.ref_recos) if t is not None]
        self.users = Codes([t[U] for t in tables])
        self.items = Codes([t[I] for t in tables])
        codes = iter(zip(self.users.codes, self.items.codes))
        self.reco_user, self.reco_item = next(codes)
        self.reco_rank = self.recos[R].to_numpy().astype(np.int64, copy=False)
        self._pairs = {name: next(codes) for name, t in (("test", self.test), ("train", self.train),
                                                          ("ref", self.ref_recos)) if t is not None}
        _check_unique(self._key(self.reco_user, self.reco_item), "recos")
        if self.ref_recos is not None:
            _check_unique(self._key(*self._pairs["ref"]), "ref_recos")
        self.cache: dict = {}  # derived arrays shared by the metrics (see definitions.py)

    def has(self, need: str) -> bool:
        if need == "catalog":
            return self._catalog is not None or self.train is not None
        return getattr(self, need) is not None

    def _key(self, user: np.ndarray, item: np.ndarray) -> np.ndarray:
        """One int64 per (user, item) pair: ``user·n_items + item``."""
        return user * self.items.n + item

    @cached_property
    def test_pairs(self) -> tuple[np.ndarray, np.ndarray]:
        """Distinct test pairs ``(user codes, item codes)``."""
        keys = _distinct(self._key(*self._pairs["test"]))
        return keys // self.items.n, keys % self.items.n

    @cached_property
    def n_rel(self) -> np.ndarray:
        """``n_rel[u]``: the number of distinct test items of user code ``u`` (0: not a test user)."""
        return np.bincount(self.test_pairs[0], minlength=self.users.n)

    @cached_property
    def test_users(self) -> np.ndarray:
        """Codes of the test users, in id order."""
        return np.flatnonzero(self.n_rel)

    @cached_property
    def is_relevant(self) -> np.ndarray:
        """Per recommendation row: is the pair among the test pairs."""
        keys = self._key(*self.test_pairs)
        return pl.Series(self._key(self.reco_user, self.reco_item)).is_in(pl.Series(keys).implode()).to_numpy()

    @cached_property
    def relevant_hits(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Relevant recommendations sorted by user, then rank: ``(user codes, ranks, hit_index)`` — hit_index
        is 1 for a user's first hit by rank, 2 for the second, …"""
        rows = np.flatnonzero(self.is_relevant)
        user, rank = self.reco_user[rows], self.reco_rank[rows]
        order = np.lexsort((rank, user))
        user, rank = user[order], rank[order]
        first = np.r_[True, user[1:] != user[:-1]] if len(user) else np.zeros(0, dtype=bool)
        start = np.flatnonzero(first)
        hit_index = np.arange(len(user)) - np.repeat(start, np.diff(np.r_[start, len(user)])) + 1
        return user, rank, hit_index

    @cached_property
    def reco_users(self) -> np.ndarray:
        """Codes of the users with a recommendation (within ``max_k``), in id order."""
        return np.flatnonzero(np.bincount(self.reco_user, minlength=self.users.n))

    @cached_property
    def catalog_size(self) -> int:
        if self._catalog is not None:
            return self._catalog.len()
        return int(np.count_nonzero(self.train_rows_per_item))

    @cached_property
    def train_rows_per_item(self) -> np.ndarray:
        """``n_rows[i]``: train interactions of item code ``i`` (0 for items absent from train)."""
        return np.bincount(self._pairs["train"][1], minlength=self.items.n)

    @cached_property
    def train_users_per_item(self) -> np.ndarray:
        """``n_users[i]``: distinct train users of item code ``i``."""
        keys = _distinct(self._key(*self._pairs["train"]))
        return np.bincount(keys % self.items.n, minlength=self.items.n)

    @cached_property
    def popularity_rank(self) -> np.ndarray:
        """Dense rank of each item's train interactions (1 = the most frequent; equal counts share a rank;
        0 for items absent from train)."""
        counts = self.train_rows_per_item
        distinct = np.unique(counts[counts > 0])[::-1]                 # descending
        rank = np.zeros(len(counts), dtype=np.int64)
        present = counts > 0
        rank[present] = np.searchsorted(-distinct, -counts[present]) + 1
        return rank

    @cached_property
    def n_train_users(self) -> int:
        return int(np.count_nonzero(np.bincount(self._pairs["train"][0], minlength=self.users.n)))

    @cached_property
    def reco_ref_rank(self) -> np.ndarray:
        """Per recommendation row: the rank the reference model gives the same (user, item), 0 if none."""
        ref_keys = self._key(*self._pairs["ref"])
        order = np.argsort(ref_keys)
        sorted_keys = ref_keys[order]
        keys = self._key(self.reco_user, self.reco_item)
        at = np.minimum(np.searchsorted(sorted_keys, keys), max(len(sorted_keys) - 1, 0))
        if not len(sorted_keys):
            return np.zeros(len(keys), dtype=np.int64)
        ref_rank = self.ref_recos[R].to_numpy().astype(np.int64, copy=False)[order[at]]
        return np.where(sorted_keys[at] == keys, ref_rank, 0)


def _check_recos(recos: pl.DataFrame, what: str, max_k: int) -> pl.DataFrame:
    require_columns(recos.columns, (U, I, R), what)
    if not recos.schema[R].is_integer():
        raise SchemaError(f"{what}: column 'rank' must be integer (1 = first), got {recos.schema[R]}")
    out = recos.select(U, I, R).filter(pl.col(R) <= max_k)
    if out.height and out[R].min() < 1:
        raise SchemaError(f"{what}: ranks start at 1; found rank {out[R].min()}")
    return out


def _distinct(keys: np.ndarray) -> np.ndarray:
    """The distinct values of ``keys``, sorted (one sort: numpy's vectorised sort beats hashing here)."""
    ordered = np.sort(keys)
    return ordered[np.r_[True, ordered[1:] != ordered[:-1]]] if len(ordered) else ordered


def _check_unique(keys: np.ndarray, what: str) -> None:
    ordered = np.sort(keys)
    if (ordered[1:] == ordered[:-1]).any():
        raise SchemaError(f"{what}: an item is recommended twice to the same user; deduplicate the recommendations")
