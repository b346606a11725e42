r"""Set-based accuracy metrics @k: HitRate, Precision, Recall.

Notation: for a user :math:`u`, :math:`L_u` is the top-k list, :math:`T_u` the set of test items,
:math:`\mathrm{tp}_u = |L_u \cap T_u|`. Each metric is averaged over **all test users** (a user
without recommendations scores 0), as in RecTools.
"""

from __future__ import annotations

import polars as pl

from seminar_lib.metrics.single import metric_value


def hit_rate(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""HitRate@k :math:`= \frac{1}{|U|}\sum_u [\mathrm{tp}_u > 0]`.

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rank": [1, 2, 1]})
    >>> test = pl.DataFrame({"user_id": [1, 2, 3], "item_id": [2, 5, 1]})
    >>> hit_rate(recos, test, k=2)  # user 1 hits, users 2 and 3 do not
    0.3333333333333333
    """
    return metric_value("hit_rate", k, per_user, recos, test=test)


def precision(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""Precision@k :math:`= \frac{1}{|U|}\sum_u \mathrm{tp}_u / k` (divided by k even for shorter lists).

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 1], "item_id": [2, 3]})
    >>> precision(recos, test, k=4)
    0.25
    """
    return metric_value("precision", k, per_user, recos, test=test)


def recall(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""Recall@k :math:`= \frac{1}{|U|}\sum_u \mathrm{tp}_u / |T_u|`.

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 1, 1, 1], "item_id": [2, 3, 4, 5]})
    >>> recall(recos, test, k=2)
    0.25
    """
    return metric_value("recall", k, per_user, recos, test=test)
