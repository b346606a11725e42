r"""Rank-aware accuracy metrics @k: DCG, nDCG, MAP, MRR.

:math:`\mathrm{rel}_u(i) = 1` if the item at rank :math:`i` is in the user's test set
:math:`T_u`. Averaged over **all test users** (no recommendations → 0). Defaults are RecTools':
nDCG divides by the ideal DCG of k relevant items, MAP by :math:`|T_u|`.
"""

from __future__ import annotations

import polars as pl

from seminar_lib.metrics.single import metric_value


def dcg(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""DCG@k :math:`= \frac{1}{|U|}\sum_u \sum_{i=1}^{k} \frac{\mathrm{rel}_u(i)}{\log_2(i+1)}`.

    >>> recos = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "rank": [1, 2, 3]})
    >>> test = pl.DataFrame({"user_id": [1], "item_id": [3]})
    >>> dcg(recos, test, k=3)  # 1 / log2(4)
    0.5
    """
    return metric_value("dcg", k, per_user, recos, test=test)


def ndcg(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""nDCG@k :math:`= \frac{1}{|U|}\sum_u \mathrm{DCG}_u@k / \mathrm{IDCG}@k`,
    :math:`\mathrm{IDCG}@k = \sum_{i=1}^{k} 1/\log_2(i+1)` (all k positions, RecTools' default — so a
    user with fewer than k test items cannot reach 1).

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2]})
    >>> round(ndcg(recos, test, k=2), 12)
    1.0
    >>> round(ndcg(recos, test.head(1), k=2), 4)  # 1 / (1 + 1/log2(3))
    0.6131
    """
    return metric_value("ndcg", k, per_user, recos, test=test)


def ndcg_achievable(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *,
                    per_user: bool = False) -> float | pl.DataFrame:
    r"""nDCG@k against the DCG the user can achieve:
    :math:`\frac{1}{|U|}\sum_u \mathrm{DCG}_u@k / \mathrm{IDCG}_u@k`,
    :math:`\mathrm{IDCG}_u@k = \sum_{i=1}^{\min(k, |T_u|)} 1/\log_2(i+1)` (RecTools'
    ``NDCG(divide_by_achievable=True)``). A perfect list scores 1 for every user; with one test item per user
    it equals :func:`dcg`.

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [1, 2, 1, 2], "rank": [1, 2, 1, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 2], "item_id": [1, 2]})
    >>> round(ndcg_achievable(recos, test, k=2), 4)  # (1 + 1/log2(3)) / 2
    0.8155
    >>> round(ndcg_achievable(recos, test, k=2), 12) == round(dcg(recos, test, k=2), 12)
    True
    """
    return metric_value("ndcg_achievable", k, per_user, recos, test=test)


def map_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""MAP@k :math:`= \frac{1}{|U|}\sum_u \frac{1}{|T_u|}\sum_{i=1}^{k} \mathrm{rel}_u(i)\,P_u@i`, where
    :math:`P_u@i` is the precision of the first i items (RecTools' ``divide_by_k=False``).

    >>> recos = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 2, 3], "rank": [1, 2, 3]})
    >>> test = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [1, 3, 9]})
    >>> round(map_at_k(recos, test, k=3), 4)  # (1/1 + 2/3) / 3
    0.5556
    """
    return metric_value("map", k, per_user, recos, test=test)


def mrr(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""MRR@k :math:`= \frac{1}{|U|}\sum_u 1/\mathrm{rank}_u`, the rank of the first relevant item
    within the top k (0 if there is none).

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rank": [1, 2, 1]})
    >>> test = pl.DataFrame({"user_id": [1, 2], "item_id": [2, 5]})
    >>> mrr(recos, test, k=2)  # (1/2 + 0) / 2
    0.25
    """
    return metric_value("mrr", k, per_user, recos, test=test)
