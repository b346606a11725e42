"""The metric key ``"ndcg@10"``: the one place it is built (:func:`metric_key`, :func:`metric_key_expr` for a
polars column) and parsed (:func:`split_key`).

Tables stay structured — ``model, metric, k, value`` (+ ``ci_low, ci_high``) — from
:func:`~seminar_lib.metrics.evaluate` to :func:`~seminar_lib.record.record_metrics`; a key is written only
where a value needs one name: a per-user column, a wide display table, a recorded bundle.
"""

from __future__ import annotations

import polars as pl


def metric_key(metric: str, k: int | None) -> str:
    """The display key of a metric at a cut-off, ``"ndcg@10"``; ``k=None`` (a metric without a cut-off) → the
    name alone, so ``metric_key(*split_key(key)) == key``.

    >>> metric_key("ndcg", 10), metric_key("auc", None)
    ('ndcg@10', 'auc')
    """
    return metric if k is None else f"{metric}@{k}"


def metric_key_expr(metric: str | pl.Expr = "metric", k: str | pl.Expr = "k") -> pl.Expr:
    """:func:`metric_key` for every row: ``metric + "@" + k`` of two columns (names or expressions)."""
    metric = pl.col(metric) if isinstance(metric, str) else metric
    k = pl.col(k) if isinstance(k, str) else k
    return metric + "@" + k.cast(pl.String)


def split_key(key: str) -> tuple[str, int | None]:
    """``"ndcg@10"`` → ``("ndcg", 10)``; a key without ``@k`` → ``(key, None)`` (the only place keys are parsed).

    >>> split_key("ndcg@10"), split_key("auc")
    (('ndcg', 10), ('auc', None))
    """
    metric, _, k = key.partition("@")
    return (metric, int(k)) if k.isdigit() else (key, None)
