"""One metric at one cut-off: the helper behind the per-metric functions."""

from __future__ import annotations

from typing import Any

import polars as pl

from seminar_lib.metrics.calc import evaluate, per_user_metrics
from seminar_lib.metrics.keys import metric_key


def metric_value(name: str, k: int, per_user: bool, recos: pl.DataFrame, **inputs: Any) -> float | pl.DataFrame:
    """``evaluate(...)`` for one metric and one k: the mean, or (``per_user=True``) the per-user table
    ``user_id, value``."""
    if per_user:
        table = per_user_metrics(recos, k=k, metrics=[name], **inputs)[name]
        return table.rename({metric_key(name, k): "value"})
    return evaluate(recos, k=k, metrics=[name], **inputs)["value"].item()
