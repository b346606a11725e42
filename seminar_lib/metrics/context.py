"""Shared, validated inputs of the metrics: every join is done once and reused for all metrics and k."""

from __future__ import annotations

from functools import cached_property

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError, require_columns

U, I, R = Columns.user, Columns.item, Columns.rank


class EvalContext:
    """Inputs of :func:`seminar_lib.metrics.evaluate` and their derived tables.

    Args:
        recos: ``user_id, item_id, rank`` (rank starts at 1; other columns are ignored).
        test: held-out interactions ``user_id, item_id`` (duplicate pairs count once).
        train: interactions seen before the test ("previous interactions"): item popularity for
            novelty, serendipity and popularity metrics, and the default catalogue.
        catalog: ids of the items that can be recommended; default: the items of ``train``.
        ref_recos: a reference model's recommendations for Intersection.
        max_k: the largest cut-off that will be asked for (rows ranked below it are dropped once).
    """

    def __init__(self, recos: pl.DataFrame, test: pl.DataFrame | None = None, train: pl.DataFrame | None = None,
                 catalog: pl.Series | list | np.ndarray | None = None, ref_recos: pl.DataFrame | None = None,
                 max_k: int = 10):
        self.recos = _check_recos(recos, "recos", max_k)
        self.test = None
        if test is not None:
            require_columns(test.columns, (U, I), "test interactions")
            self.test = test.select(U, I).unique()
        self.train = None
        if train is not None:
            require_columns(train.columns, (U, I), "train interactions")
            self.train = train.select(U, I)
        self._catalog = None if catalog is None else pl.Series(I, catalog).unique()
        self.ref_recos = None if ref_recos is None else _check_recos(ref_recos, "ref_recos", max_k)
        self.cache: dict = {}  # derived tables shared by the metrics (see definitions.py)

    def has(self, need: str) -> bool:
        if need == "catalog":
            return self._catalog is not None or self.train is not None
        return getattr(self, need) is not None

    @cached_property
    def test_users(self) -> pl.DataFrame:
        """``user_id, n_rel``: every test user and its number of relevant (test) items, sorted by user."""
        return self.test.group_by(U).agg(pl.len().alias("n_rel")).sort(U)

    @cached_property
    def reco_users(self) -> pl.DataFrame:
        """``user_id`` of every user with a recommendation (within ``max_k``), sorted."""
        return self.recos.select(U).unique().sort(U)

    @cached_property
    def relevant_hits(self) -> pl.DataFrame:
        """Recommendations that are relevant: ``user_id, rank, hit_index`` (1 for the first hit of a user by
        rank, 2 for the second, …)."""
        hits = self.recos.join(self.test, on=[U, I], how="semi").sort(U, R)
        return hits.select(U, R, pl.int_range(1, pl.len() + 1).over(U).alias("hit_index"))

    @cached_property
    def catalog_size(self) -> int:
        if self._catalog is not None:
            return self._catalog.len()
        return self.train[I].n_unique()

    @cached_property
    def item_popularity(self) -> pl.DataFrame:
        """From ``train``: ``item_id``, ``n_users`` (distinct users), ``n_rows`` (interactions) and
        ``pop_rank`` (1 = the most frequent; items with equal counts share a rank)."""
        stats = self.train.group_by(I).agg(pl.col(U).n_unique().alias("n_users"), pl.len().alias("n_rows"))
        return stats.with_columns(pl.col("n_rows").rank("dense", descending=True).alias("pop_rank"))

    @cached_property
    def n_train_users(self) -> int:
        return self.train[U].n_unique()


def _check_recos(recos: pl.DataFrame, what: str, max_k: int) -> pl.DataFrame:
    require_columns(recos.columns, (U, I, R), what)
    if not recos.schema[R].is_integer():
        raise SchemaError(f"{what}: column 'rank' must be integer (1 = first), got {recos.schema[R]}")
    out = recos.select(U, I, R).filter(pl.col(R) <= max_k)
    if out.height and out[R].min() < 1:
        raise SchemaError(f"{what}: ranks start at 1; found rank {out[R].min()}")
    if out.select(pl.struct(U, I).is_duplicated().any()).item():
        raise SchemaError(f"{what}: an item is recommended twice to the same user; deduplicate the recommendations")
    return out
