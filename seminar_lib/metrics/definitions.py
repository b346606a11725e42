"""Vectorised per-user computation of every metric, for several cut-offs at once.

Each metric is a :class:`MetricDef`: what it needs, which users it averages over and a function
``per_user(ctx, ks) -> DataFrame[user_id, "<name>@<k>" …]``. The formulas are documented on the
public functions in :mod:`~seminar_lib.metrics.classification`, :mod:`~seminar_lib.metrics.ranking`
and :mod:`~seminar_lib.metrics.beyond`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.metrics.context import EvalContext

U, I, R = Columns.user, Columns.item, Columns.rank


@dataclass(frozen=True)
class MetricDef:
    """A metric: its inputs (``needs``), the users it averages over and its per-user values.

    ``users``: ``"test"`` — every user in the test interactions (users without recommendations
    score 0); ``"reco"`` — every user with at least one recommendation at rank ≤ k;
    ``"catalog"`` — a property of the whole recommendation table (not a mean over users).
    """

    name: str
    needs: tuple[str, ...]
    users: Literal["test", "reco", "catalog"]
    per_user: Callable[[EvalContext, Sequence[int]], pl.DataFrame]
    description: str


def idcg(k: int) -> float:
    r"""Ideal DCG over all ``k`` positions: :math:`\sum_{i=1}^{k} 1/\log_2(i+1)` (RecTools' default)."""
    return float((1.0 / np.log2(np.arange(2, k + 2))).sum())


def _accuracy_stats(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
    """Per test user and k: hits ``tp``, ``dcg``, reciprocal rank ``rr`` and the AP sum ``ap``.

    Only relevant recommendations are touched: ``ap@k = Σ_{relevant i, rank ≤ k} hit_index(i) / rank(i)``.
    """
    key = ("accuracy", tuple(ks))
    if key not in ctx.cache:
        rank, in_k = pl.col(R), lambda k: (pl.col(R) <= k).cast(pl.Float64)
        aggs = []
        for k in ks:
            aggs += [
                in_k(k).sum().alias(f"tp@{k}"),
                (in_k(k) / (rank + 1).log(2)).sum().alias(f"dcg@{k}"),
                (in_k(k) / rank).max().alias(f"rr@{k}"),
                (in_k(k) * pl.col("hit_index") / rank).sum().alias(f"ap@{k}"),
            ]
        stats = ctx.relevant_hits.group_by(U).agg(aggs)
        columns = [c for c in stats.columns if c != U]
        joined = ctx.test_users.join(stats, on=U, how="left")
        ctx.cache[key] = joined.with_columns(pl.col(columns).fill_null(0.0)).sort(U)  # ids keep their type
    return ctx.cache[key]


def _accuracy(name: str, formula: Callable[[int], pl.Expr]) -> Callable[[EvalContext, Sequence[int]], pl.DataFrame]:
    def per_user(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
        stats = _accuracy_stats(ctx, ks)
        return stats.select(U, *[formula(k).cast(pl.Float64).alias(f"{name}@{k}") for k in ks])
    return per_user


def _reco_rows(ctx: EvalContext) -> pl.DataFrame:
    """Recommendations joined once with everything the beyond-accuracy metrics need."""
    if "reco_rows" not in ctx.cache:
        rows = ctx.recos
        if ctx.train is not None:
            rows = rows.join(ctx.item_popularity, on=I, how="left")
        if ctx.test is not None:
            rows = rows.join(ctx.test.with_columns(pl.lit(1.0).alias("is_rel")), on=[U, I], how="left")
        if ctx.ref_recos is not None:
            ref = ctx.ref_recos.select(U, I, pl.col(R).alias("ref_rank"))
            rows = rows.join(ref, on=[U, I], how="left")
        ctx.cache["reco_rows"] = rows
    return ctx.cache["reco_rows"]


def _per_reco_user(name: str, value: Callable[[EvalContext, int], pl.Expr]) -> Callable[[EvalContext, Sequence[int]], pl.DataFrame]:
    """Per-user mean of ``value`` over the user's rows at rank ≤ k (RecTools averages over the rows a
    user has, which is the same as dividing by k when every list is full)."""
    def per_user(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
        rows = _reco_rows(ctx)
        aggs = []
        for k in ks:
            aggs.append(value(ctx, k).filter(pl.col(R) <= k).mean().alias(f"{name}@{k}"))
        # users with no row at rank <= k get null and are left out of the mean, as in RecTools
        return rows.group_by(U).agg(aggs).sort(U)
    return per_user


def _novelty_value(ctx: EvalContext, k: int) -> pl.Expr:
    return -(pl.col("n_users").fill_null(1).cast(pl.Float64) / ctx.n_train_users).log(2)


def _popularity_value(ctx: EvalContext, k: int) -> pl.Expr:
    return pl.col("n_rows").fill_null(0).cast(pl.Float64)


def _serendipity_value(ctx: EvalContext, k: int) -> pl.Expr:
    n = ctx.catalog_size
    p_user = (n + 1 - pl.col(R)) / n
    p_any = ((n + 1 - pl.col("pop_rank")) / n).fill_null(0.0)
    return (p_user - p_any).clip(lower_bound=0.0) * pl.col("is_rel").fill_null(0.0)


def _intersection_value(ctx: EvalContext, k: int) -> pl.Expr:
    return (pl.col("ref_rank") <= k).fill_null(False).cast(pl.Float64)


def _coverage(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
    """Catalog coverage has no per-user value: one row with ``user_id = null``."""
    return pl.DataFrame({U: [None], **{f"coverage@{k}": [coverage_of(ctx.recos, k) / ctx.catalog_size] for k in ks}})


def coverage_of(recos: pl.DataFrame, k: int) -> int:
    """Number of distinct items recommended at rank ≤ k."""
    return recos.filter(pl.col(R) <= k)[I].n_unique()


METRICS: dict[str, MetricDef] = {m.name: m for m in [
    MetricDef("hit_rate", ("test",), "test", _accuracy("hit_rate", lambda k: pl.col(f"tp@{k}") > 0),
              "share of test users with at least one relevant item in the top k"),
    MetricDef("precision", ("test",), "test", _accuracy("precision", lambda k: pl.col(f"tp@{k}") / k),
              "relevant items in the top k, divided by k"),
    MetricDef("recall", ("test",), "test", _accuracy("recall", lambda k: pl.col(f"tp@{k}") / pl.col("n_rel")),
              "relevant items in the top k, divided by the user's number of test items"),
    MetricDef("dcg", ("test",), "test", _accuracy("dcg", lambda k: pl.col(f"dcg@{k}")),
              "Σ rel_i / log2(i + 1) over the top k"),
    MetricDef("ndcg", ("test",), "test", _accuracy("ndcg", lambda k: pl.col(f"dcg@{k}") / idcg(k)),
              "DCG@k divided by the ideal DCG of k relevant items"),
    MetricDef("map", ("test",), "test", _accuracy("map", lambda k: pl.col(f"ap@{k}") / pl.col("n_rel")),
              "average precision at the relevant positions, divided by the number of test items"),
    MetricDef("mrr", ("test",), "test", _accuracy("mrr", lambda k: pl.col(f"rr@{k}")),
              "1 / rank of the first relevant item in the top k (0 if none)"),
    MetricDef("coverage", ("catalog",), "catalog", _coverage,
              "share of the catalogue recommended to at least one user"),
    MetricDef("novelty", ("train",), "reco", _per_reco_user("novelty", _novelty_value),
              "mean over the list of −log2(share of train users who interacted with the item)"),
    MetricDef("serendipity", ("test", "train", "catalog"), "reco",
              _per_reco_user("serendipity", _serendipity_value),
              "relevant and unexpected: mean over the list of max(p_user − p_any, 0)·rel"),
    MetricDef("avg_rec_popularity", ("train",), "reco",
              _per_reco_user("avg_rec_popularity", _popularity_value),
              "mean number of train interactions of the recommended items"),
    MetricDef("intersection", ("ref_recos",), "reco",
              _per_reco_user("intersection", _intersection_value),
              "share of the top k also in the reference model's top k"),
]}
