r"""Beyond-accuracy metrics @k: catalogue Coverage, CoveredUsers, Novelty, Serendipity, AvgRecPopularity,
Intersection.

"Previous interactions" (``train``) define popularity. Per-user values are averaged over the
**recommended users**; a user's value is the mean over its list :math:`L_u` (the top k it has),
as RecTools computes them.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from seminar_lib.metrics.single import metric_value


def coverage(recos: pl.DataFrame, k: int = 10, *, catalog: Iterable | None = None,
             train: pl.DataFrame | None = None) -> float:
    r"""Coverage@k :math:`= |\bigcup_u L_u| / |C|`: the share of the catalogue :math:`C` recommended to
    anyone (RecTools' ``CatalogCoverage(normalize=True)``). :math:`C` defaults to the items of ``train``.

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rank": [1, 2, 1]})
    >>> coverage(recos, k=2, catalog=[1, 2, 3, 4])
    0.5
    """
    return metric_value("coverage", k, False, recos, catalog=catalog, train=train)


def covered_users(recos: pl.DataFrame, test: pl.DataFrame, k: int = 10, *,
                  per_user: bool = False) -> float | pl.DataFrame:
    r"""CoveredUsers@k :math:`= \frac{1}{|U|}\sum_{u \in U} [\,|L_u| > 0\,]`: the share of the **test** users
    :math:`U` who got at least one recommendation at rank ≤ k — a data-quality check (cold or filtered-out
    users lower it). RecTools' ``CoveredUsers``; not in the default metric set, ask for it by name.

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [1, 2, 1], "rank": [1, 2, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [1, 1, 1, 1]})
    >>> covered_users(recos, test, k=1), covered_users(recos, test, k=2)  # user 2's only item is at rank 2
    (0.25, 0.5)
    """
    return metric_value("covered_users", k, per_user, recos, test=test)


def novelty(recos: pl.DataFrame, train: pl.DataFrame, k: int = 10, *, per_user: bool = False) -> float | pl.DataFrame:
    r"""Novelty@k (mean inverse user frequency) :math:`= \frac{1}{|U_r|}\sum_u \frac{1}{|L_u|}\sum_{i\in L_u}
    -\log_2 \frac{n_i}{N}`, with :math:`n_i` the number of train users of item i (1 for an item
    nobody had) and :math:`N` the number of train users. RecTools' ``MeanInvUserFreq``.

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> train = pl.DataFrame({"user_id": [1, 2, 3, 4], "item_id": [1, 1, 2, 3]})
    >>> novelty(recos, train, k=2)  # (−log2(2/4) − log2(1/4)) / 2
    1.5
    """
    return metric_value("novelty", k, per_user, recos, train=train)


def serendipity(recos: pl.DataFrame, test: pl.DataFrame, train: pl.DataFrame, k: int = 10, *,
                catalog: Iterable | None = None, per_user: bool = False) -> float | pl.DataFrame:
    r"""Serendipity@k :math:`= \frac{1}{|U_r|}\sum_u \frac{1}{|L_u|}\sum_{i\in L_u}
    \max\big(p(i) - p_{any}(i), 0\big)\,\mathrm{rel}_u(i)` with :math:`p(i) = (n+1-\mathrm{rank}_i)/n`,
    :math:`p_{any}(i) = (n+1-\mathrm{poprank}_i)/n` (0 for an item absent from train), :math:`n = |C|`
    and poprank the dense rank of the item's train count (1 = most frequent). RecTools' ``Serendipity``.

    >>> recos = pl.DataFrame({"user_id": [1], "item_id": [2], "rank": [1]})
    >>> train = pl.DataFrame({"user_id": [1, 2, 3, 3], "item_id": [1, 1, 2, 3]})
    >>> test = pl.DataFrame({"user_id": [1], "item_id": [2]})
    >>> serendipity(recos, test, train, k=1)  # n = 3: p = 3/3, poprank(2) = 2 → p_any = 2/3
    0.33333333333333337
    """
    return metric_value("serendipity", k, per_user, recos, test=test, train=train, catalog=catalog)


def avg_rec_popularity(recos: pl.DataFrame, train: pl.DataFrame, k: int = 10, *,
                       per_user: bool = False) -> float | pl.DataFrame:
    r"""AvgRecPopularity@k :math:`= \frac{1}{|U_r|}\sum_u \frac{1}{|L_u|}\sum_{i\in L_u} \phi(i)`, with
    :math:`\phi(i)` the number of train interactions of item i. RecTools' ``AvgRecPopularity``.

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> train = pl.DataFrame({"user_id": [1, 2, 3], "item_id": [1, 1, 2]})
    >>> avg_rec_popularity(recos, train, k=2)
    1.5
    """
    return metric_value("avg_rec_popularity", k, per_user, recos, train=train)


def intersection(recos: pl.DataFrame, ref_recos: pl.DataFrame, k: int = 10, *,
                 per_user: bool = False) -> float | pl.DataFrame:
    r"""Intersection@k :math:`= \frac{1}{|U_r|}\sum_u |L_u \cap L^{ref}_u| / |L_u|`: how much of the list a
    reference model also recommends in its top k. RecTools' ``Intersection`` (``ref_k = k``).

    >>> recos = pl.DataFrame({"user_id": [1, 1], "item_id": [1, 2], "rank": [1, 2]})
    >>> ref = pl.DataFrame({"user_id": [1, 1], "item_id": [2, 3], "rank": [1, 2]})
    >>> intersection(recos, ref, k=2)
    0.5
    """
    return metric_value("intersection", k, per_user, recos, ref_recos=ref_recos)
