"""Vectorised per-user computation of every metric, for several cut-offs at once.

Everything is computed on the integer arrays of :class:`~seminar_lib.metrics.context.EvalContext`
(``numpy.bincount`` over user codes); each metric is a :class:`MetricDef`: what it needs, which users it averages over and a function
``per_user(ctx, ks) -> DataFrame[user_id, metric_key(name, k) …]`` (``"ndcg@10"``). The formulas are documented
on the public functions in :mod:`~seminar_lib.metrics.classification`, ``ranking`` and ``beyond``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.metrics.context import EvalContext
from seminar_lib.metrics.keys import metric_key

U, I, R = Columns.user, Columns.item, Columns.rank


@dataclass(frozen=True)
class MetricDef:
    """A metric: its inputs (``needs``), the users it averages over and its per-user values.

    ``users``: ``"test"`` — every user in the test interactions (users without recommendations
    score 0); ``"reco"`` — every user with at least one recommendation at rank ≤ k;
    ``"catalog"`` — a property of the whole recommendation table (not a mean over users).
    ``by_default``: computed when no metric list is given (a variant of another metric is asked for by name).
    """

    name: str
    needs: tuple[str, ...]
    users: Literal["test", "reco", "catalog"]
    per_user: Callable[[EvalContext, Sequence[int]], pl.DataFrame]
    description: str
    by_default: bool = True


def idcg(k: int) -> float:
    r"""Ideal DCG over all ``k`` positions: :math:`\sum_{i=1}^{k} 1/\log_2(i+1)` (RecTools' default)."""
    return float((1.0 / np.log2(np.arange(2, k + 2))).sum())


def achievable_idcg(k: int, n_rel: np.ndarray) -> np.ndarray:
    r"""Ideal DCG a user can reach: :math:`\sum_{i=1}^{\min(k, |T_u|)} 1/\log_2(i+1)` per user
    (RecTools' ``divide_by_achievable=True``); ``n_rel``: ``(n_users,)`` the users' numbers of test items.

    >>> achievable_idcg(3, np.array([1, 2, 5])).round(4).tolist()
    [1.0, 1.6309, 2.1309]
    """
    prefix = np.concatenate([[0.0], np.cumsum(1.0 / np.log2(np.arange(2, k + 2)))])
    return prefix[np.minimum(np.asarray(n_rel, dtype=np.int64), k)]


def _accuracy_stats(ctx: EvalContext, ks: Sequence[int]) -> dict[str, np.ndarray]:
    """Per test user (``ctx.test_users``, in id order) and k: hits ``tp``, ``dcg``, reciprocal rank ``rr``
    and the AP sum ``ap``, as arrays.

    Only relevant recommendations are touched — ``(user, rank, hit_index)`` sorted by user, then rank —
    and each sum over a user's hits is one ``bincount`` over user codes:
    ``tp@k = Σ [rank ≤ k]``, ``dcg@k = Σ [rank ≤ k] / log2(rank + 1)``, ``rr@k = [r₁ ≤ k] / r₁`` (r₁ the
    rank of the user's first hit) and ``ap@k = Σ [rank ≤ k] · hit_index / rank``.
    """
    key = ("accuracy", tuple(ks))
    if key not in ctx.cache:
        user, rank, hit_index = ctx.relevant_hits
        first = hit_index == 1
        n = ctx.users.n
        stats = {}
        for k in ks:
            in_k = (rank <= k).astype(np.float64)
            stats[f"tp@{k}"] = np.bincount(user, in_k, minlength=n)
            stats[f"dcg@{k}"] = np.bincount(user, in_k / np.log2(rank + 1), minlength=n)
            stats[f"rr@{k}"] = np.bincount(user[first], in_k[first] / rank[first], minlength=n)
            stats[f"ap@{k}"] = np.bincount(user, in_k * hit_index / rank, minlength=n)
        ctx.cache[key] = {name: values[ctx.test_users] for name, values in stats.items()}
    return ctx.cache[key]


def _accuracy(name: str, formula: Callable[[dict[str, np.ndarray], int, np.ndarray], np.ndarray]
              ) -> Callable[[EvalContext, Sequence[int]], pl.DataFrame]:
    """``formula(stats, k, n_rel)``: the metric's per-test-user values from :func:`_accuracy_stats`."""
    def per_user(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
        stats = _accuracy_stats(ctx, ks)
        n_rel = ctx.n_rel[ctx.test_users].astype(np.float64)
        columns = {metric_key(name, k): np.asarray(formula(stats, k, n_rel), dtype=np.float64) for k in ks}
        return pl.DataFrame({U: ctx.users.decode(ctx.test_users, ctx.test.schema[U]), **columns})
    return per_user


def _per_reco_user(name: str, value: Callable[[EvalContext, int], np.ndarray]) -> Callable[[EvalContext, Sequence[int]], pl.DataFrame]:
    """Per-user mean of ``value(ctx, k)`` (one number per recommendation row) over the user's rows at rank ≤ k
    (RecTools averages over the rows a user has, which is the same as dividing by k when every list is full)."""
    def per_user(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
        n, users = ctx.users.n, ctx.reco_users
        columns = {}
        for k in ks:
            values, in_k = value(ctx, k), ctx.reco_rank <= k
            count = np.bincount(ctx.reco_user[in_k], minlength=n)[users]
            total = np.bincount(ctx.reco_user[in_k], values[in_k], minlength=n)[users]
            with np.errstate(invalid="ignore", divide="ignore"):
                mean = total / count
            # users with no row at rank <= k get null and are left out of the mean, as in RecTools
            columns[metric_key(name, k)] = pl.Series(mean).fill_nan(None)
        return pl.DataFrame({U: ctx.users.decode(users, ctx.recos.schema[U]), **columns})
    return per_user


def _novelty_value(ctx: EvalContext, k: int) -> np.ndarray:
    n_users = ctx.train_users_per_item[ctx.reco_item].astype(np.float64)
    return -np.log2(np.where(n_users > 0, n_users, 1.0) / ctx.n_train_users)


def _popularity_value(ctx: EvalContext, k: int) -> np.ndarray:
    return ctx.train_rows_per_item[ctx.reco_item].astype(np.float64)


def _serendipity_value(ctx: EvalContext, k: int) -> np.ndarray:
    n = ctx.catalog_size
    p_user = (n + 1 - ctx.reco_rank) / n
    pop_rank = ctx.popularity_rank[ctx.reco_item]
    p_any = np.where(pop_rank > 0, (n + 1 - pop_rank) / n, 0.0)
    return np.clip(p_user - p_any, 0.0, None) * ctx.is_relevant


def _intersection_value(ctx: EvalContext, k: int) -> np.ndarray:
    ref_rank = ctx.reco_ref_rank
    return ((ref_rank > 0) & (ref_rank <= k)).astype(np.float64)


def _covered_users(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
    """Per test user and k: 1 if the user has at least one recommendation at rank ≤ k, else 0."""
    n = ctx.users.n
    columns = {metric_key("covered_users", k): (np.bincount(ctx.reco_user[ctx.reco_rank <= k], minlength=n)[ctx.test_users] > 0
                                      ).astype(np.float64) for k in ks}
    return pl.DataFrame({U: ctx.users.decode(ctx.test_users, ctx.test.schema[U]), **columns})


def _coverage(ctx: EvalContext, ks: Sequence[int]) -> pl.DataFrame:
    """Catalog coverage has no per-user value: one row with ``user_id = null``."""
    return pl.DataFrame({U: [None], **{metric_key("coverage", k): [coverage_of(ctx, k) / ctx.catalog_size] for k in ks}})


def coverage_of(ctx: EvalContext, k: int) -> int:
    """Number of distinct items recommended at rank ≤ k."""
    return int(np.count_nonzero(np.bincount(ctx.reco_item[ctx.reco_rank <= k], minlength=ctx.items.n)))


METRICS: dict[str, MetricDef] = {m.name: m for m in [
    MetricDef("hit_rate", ("test",), "test", _accuracy("hit_rate", lambda s, k, n: s[f"tp@{k}"] > 0),
              "share of test users with at least one relevant item in the top k"),
    MetricDef("precision", ("test",), "test", _accuracy("precision", lambda s, k, n: s[f"tp@{k}"] / k),
              "relevant items in the top k, divided by k"),
    MetricDef("recall", ("test",), "test", _accuracy("recall", lambda s, k, n: s[f"tp@{k}"] / n),
              "relevant items in the top k, divided by the user's number of test items"),
    MetricDef("dcg", ("test",), "test", _accuracy("dcg", lambda s, k, n: s[f"dcg@{k}"]),
              "Σ rel_i / log2(i + 1) over the top k"),
    MetricDef("ndcg", ("test",), "test", _accuracy("ndcg", lambda s, k, n: s[f"dcg@{k}"] / idcg(k)),
              "DCG@k divided by the ideal DCG of k relevant items"),
    MetricDef("ndcg_achievable", ("test",), "test",
              _accuracy("ndcg_achievable", lambda s, k, n: s[f"dcg@{k}"] / achievable_idcg(k, n)),
              "DCG@k divided by the ideal DCG of min(k, |T_u|) relevant items (1 is reachable)", by_default=False),
    MetricDef("map", ("test",), "test", _accuracy("map", lambda s, k, n: s[f"ap@{k}"] / n),
              "average precision at the relevant positions, divided by the number of test items"),
    MetricDef("mrr", ("test",), "test", _accuracy("mrr", lambda s, k, n: s[f"rr@{k}"]),
              "1 / rank of the first relevant item in the top k (0 if none)"),
    MetricDef("covered_users", ("test",), "test", _covered_users,
              "share of test users with at least one recommendation in the top k", by_default=False),
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
