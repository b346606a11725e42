"""Record a notebook's final metrics machine-readably (for tests, nbval and the leaderboard).

The last cell of every notebook calls :func:`record_metrics`. It displays a JSON bundle under the
MIME type :data:`MIME` (values rounded to 4 decimals, so nbval's exact comparison is stable) with a
table for people beside it — a metric a row, a model a column, split into blocks that fit 100
characters (text) and the same as HTML — and — when ``$SEMINAR_RUN_DIR`` is set — writes
``<run dir>/<notebook>.metrics.json`` with full precision, atomically.
:func:`read_recorded_metrics` reads the bundle back from an executed ``.ipynb``.
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl

from seminar_lib.display import Column, Grid, Group, format_number
from seminar_lib.files import atomic_write_text

MIME = "application/vnd.seminar-lib.metrics+json"
RUN_DIR_VAR = "SEMINAR_RUN_DIR"
DIGITS = 4

Metrics = Mapping[str, Mapping[str, float]]  # model → {"ndcg@10": value, ...}


def metrics_from_table(table: pl.DataFrame) -> dict[str, dict[str, float]]:
    """Tidy ``model, metric, k, value`` (as :func:`seminar_lib.evaluation.fit_and_evaluate` reports) →
    ``{model: {"<metric>@<k>": value}}``."""
    out: dict[str, dict[str, float]] = {}
    for model, metric, k, value in table.select("model", "metric", "k", "value").iter_rows():
        out.setdefault(model, {})[f"{metric}@{k}"] = value
    return out


def _clean(metrics: Metrics, digits: int | None) -> dict[str, dict[str, float | None]]:
    def num(v: float) -> float | None:
        v = float(v)
        if not math.isfinite(v):
            return None
        return round(v, digits) if digits is not None else v
    return {str(model): {str(name): num(v) for name, v in values.items()} for model, values in metrics.items()}


def record_metrics(notebook: str, metrics: Metrics | pl.DataFrame, **extra: Any) -> None:
    """Display and (with ``$SEMINAR_RUN_DIR``) save ``metrics`` of ``notebook`` (its file stem).

    ``metrics``: ``{model: {"ndcg@10": 0.21, ...}}`` or a tidy table with ``model, metric, k, value``.
    ``extra``: other JSON-serialisable facts worth keeping (e.g. ``best_regularization=500``).
    """
    if isinstance(metrics, pl.DataFrame):
        metrics = metrics_from_table(metrics)
    full = {"notebook": notebook, "metrics": _clean(metrics, None), **extra}
    shown = {"notebook": notebook, "metrics": _clean(metrics, DIGITS), **extra}
    run_dir = os.environ.get(RUN_DIR_VAR)
    if run_dir:
        atomic_write_text(Path(run_dir) / f"{notebook}.metrics.json", json.dumps(full, indent=1, sort_keys=True))
    try:
        from IPython.display import display
    except ImportError:  # pragma: no cover - IPython is a dependency of the course environment
        print(_title(shown) + "\n" + _grid(shown).text())
    else:
        grid = _grid(shown)
        display({MIME: shown, "text/plain": _title(shown) + "\n" + grid.text(),
                 "text/html": f"<p>{html.escape(_title(shown))}</p>\n{grid.html()}"}, raw=True)


def _title(bundle: Mapping[str, Any]) -> str:
    return f"recorded metrics of {bundle['notebook']}"


def _grid(bundle: Mapping[str, Any]) -> Grid:
    """Metrics as rows (in metric, then k order), models as columns."""
    metrics = bundle["metrics"]
    names = sorted({n for values in metrics.values() for n in values}, key=_metric_order)
    groups = [Group(str(model), [Column(str(model), [format_number(values.get(n), DIGITS) for n in names])])
              for model, values in metrics.items()]
    return Grid("metric", names, groups)


def _metric_order(name: str) -> tuple[str, int]:
    metric, _, k = name.partition("@")
    return metric, int(k) if k.isdigit() else 0


def read_recorded_metrics(notebook_path: str | os.PathLike[str]) -> dict[str, Any]:
    """The last metrics bundle displayed in an executed notebook (raises if there is none)."""
    nb = json.loads(Path(notebook_path).read_text())
    found = None
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                found = data[MIME]
    if found is None:
        raise ValueError(f"{notebook_path} has no recorded metrics (no output of type {MIME}); "
                         "did its last cell call record_metrics and did it run to the end?")
    return found
