"""Vectorised recommendation metrics (polars), equal in value to RecTools' definitions.

* :mod:`~seminar_lib.metrics.classification`: ``hit_rate``, ``precision``, ``recall``
* :mod:`~seminar_lib.metrics.ranking`: ``dcg``, ``ndcg``, ``ndcg_achievable``, ``map_at_k``, ``mrr``
* :mod:`~seminar_lib.metrics.beyond`: ``coverage``, ``covered_users``, ``novelty``, ``serendipity``,
  ``avg_rec_popularity``, ``intersection``
* :func:`evaluate`: all of them at several k from one merge, with bootstrap confidence intervals.
"""

from seminar_lib.metrics.beyond import avg_rec_popularity, coverage, covered_users, intersection, novelty, serendipity
from seminar_lib.metrics.calc import bootstrap_means, evaluate, paired_difference, per_user_metrics, to_wide
from seminar_lib.metrics.classification import hit_rate, precision, recall
from seminar_lib.metrics.definitions import METRICS, MetricDef, achievable_idcg, idcg
from seminar_lib.metrics.ranking import dcg, map_at_k, mrr, ndcg, ndcg_achievable

__all__ = [
    "METRICS", "MetricDef", "achievable_idcg", "avg_rec_popularity", "bootstrap_means", "coverage", "covered_users", "dcg", "evaluate", "hit_rate",
    "idcg", "intersection", "map_at_k", "mrr", "ndcg", "ndcg_achievable", "novelty", "paired_difference", "per_user_metrics", "precision",
    "recall",
    "serendipity", "to_wide",
]
