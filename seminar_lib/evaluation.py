"""Fit a model, recommend for the warm test users and measure it — in one call."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.display import Column, Grid, Group, format_number
from seminar_lib.errors import EmptySplitError
from seminar_lib.metrics import evaluate
from seminar_lib.metrics.keys import metric_key, metric_key_expr
from seminar_lib.models.base import Recommender
from seminar_lib.splits import Split, filter_warm


@dataclass(frozen=True)
class Report:
    """What :func:`fit_and_evaluate` measured.

    ``metrics`` is the tidy table of :func:`~seminar_lib.metrics.evaluate` with a ``model`` column;
    ``recos`` the recommendations it scored; times are wall-clock seconds.
    """

    model: str
    metrics: pl.DataFrame
    recos: pl.DataFrame
    fit_seconds: float
    recommend_seconds: float

    def value(self, metric: str, k: int = 10) -> float:
        """One metric's value, e.g. ``report.value("ndcg", 10)``."""
        row = self.metrics.filter((pl.col("metric") == metric) & (pl.col("k") == k))
        if row.is_empty():
            raise KeyError(f"{metric_key(metric, k)} was not computed; available: "
                           f"{sorted(set(self.metrics['metric']))} at k={sorted(set(self.metrics['k']))}")
        return row["value"].item()


def fit_and_evaluate(model: Recommender, train: pl.DataFrame, test: pl.DataFrame, *, k: int | Iterable[int] = 10,
                     metrics: Sequence[str] | None = None, name: str | None = None, filter_viewed: bool = True,
                     bootstrap: int = 0, seed: int = 0, ref_recos: pl.DataFrame | None = None,
                     fit: bool = True) -> Report:
    """Fit ``model`` on ``train``, recommend top-``max(k)`` for the test users seen in train, evaluate.

    Test rows of users absent from ``train`` are dropped (the warm-user protocol); test items
    absent from ``train`` stay — they count as relevant items no model fitted on ``train`` can
    recommend. Beyond-accuracy metrics use ``train`` as the previous interactions and catalogue.
    With ``fit=False`` an already fitted model is reused (then ``fit_seconds`` is 0).
    """
    label = name or model.name
    warm = filter_warm(test, train, users=True, items=False, allow_empty=True)
    if warm.is_empty():
        raise EmptySplitError(f"{label}: no test user appears in train, so nothing can be evaluated")
    ks = (k,) if isinstance(k, int) else tuple(k)
    start = time.perf_counter()
    if fit:
        model.fit(train)
    fitted = time.perf_counter()
    recos = model.recommend(warm[Columns.user].unique(), k=max(ks), filter_viewed=filter_viewed)
    done = time.perf_counter()
    table = evaluate(recos, warm, train=train, k=ks, metrics=metrics, bootstrap=bootstrap, seed=seed,
                     ref_recos=ref_recos)
    return Report(label, table.with_columns(pl.lit(label).alias("model")).select("model", *table.columns), recos,
                  fitted - start, done - fitted)


class ResultsTable(pl.DataFrame):
    """The frame :func:`results_table` and :func:`comparison_table` return: an ordinary polars DataFrame (numeric columns) whose
    display — in a notebook (HTML) and as text (at most :data:`seminar_lib.display.WIDTH` characters a
    line) — shows one row per model and, for each metric, its value with the interval's ``low`` and
    ``high`` in columns of their own, a wide table split into blocks. Frames derived from it (``filter``,
    ``select`` …) are plain DataFrames again."""

    digits: int = 4

    def grid(self) -> Grid:
        """The display's layout: ``<name>`` columns with their ``<name>_low`` / ``<name>_high`` beside them."""
        columns = self.columns
        label = columns[0]
        groups = []
        for name in columns[1:]:
            if name.endswith(("_low", "_high")) and name.rsplit("_", 1)[0] in columns:
                continue
            digits = 2 if name.endswith("_s") else self.digits
            bounds = [f"{name}_{part}" for part in ("low", "high") if f"{name}_{part}" in columns]
            bounds = bounds if any(self[b].fill_nan(None).null_count() < self.height for b in bounds) else []
            cells = [Column("value" if bounds else name, self._cells(name, digits))]
            cells += [Column(b.rsplit("_", 1)[1], self._cells(b, digits)) for b in bounds]
            groups.append(Group(name, cells))
        return Grid(label, [str(v) for v in self[label]], groups)

    def _cells(self, name: str, digits: int) -> list[str]:
        return [format_number(v, digits) for v in self[name]]

    def __repr__(self) -> str:
        return self.grid().text()

    __str__ = __repr__

    def _repr_html_(self, **kwargs: Any) -> str:
        return self.grid().html()


def results_table(reports: Iterable[Report], *, digits: int = 4, with_ci: bool = False,
                  metrics: Sequence[str] | None = None, k: int | Sequence[int] | None = None,
                  times: bool = True) -> ResultsTable:
    """One row per model: :func:`comparison_table` of the reports' metrics (``metrics`` and ``k``
    select them, default all) and, with ``times``, the ``fit_s`` / ``recommend_s`` seconds."""
    reports = list(reports)
    tidy = pl.concat([r.metrics for r in reports], how="diagonal_relaxed")
    if metrics is not None:
        tidy = tidy.filter(pl.col("metric").is_in(list(metrics)))
    if k is not None:
        tidy = tidy.filter(pl.col("k").is_in([k] if isinstance(k, int) else list(k)))
    if with_ci and "ci_low" not in tidy.columns:
        raise ValueError("with_ci=True needs reports evaluated with bootstrap > 0 (fit_and_evaluate(..., bootstrap=1000))")
    wide = comparison_table(tidy, digits=digits, with_ci=with_ci)
    if times:
        secs = pl.DataFrame({"model": [r.model for r in reports],
                             "fit_s": [round(r.fit_seconds, 2) for r in reports],
                             "recommend_s": [round(r.recommend_seconds, 2) for r in reports]})
        wide = wide.join(secs, on="model", how="left", maintain_order="left")
    return _as_results_table(wide, digits)


def comparison_table(tidy: pl.DataFrame, *, digits: int = 4, with_ci: bool = False) -> ResultsTable:
    """A tidy ``model, metric, k, value`` table (+ ``ci_low, ci_high`` from a bootstrap), e.g. of
    :func:`~seminar_lib.metrics.evaluate` or the sequential protocol, as one row per model: a
    ``<metric>@<k>`` float column per value, rounded to ``digits``, and with ``with_ci`` the
    interval in ``<metric>@<k>_low`` / ``<metric>@<k>_high`` beside it. Displays as
    :class:`ResultsTable` says (the numeric counterpart of ``metrics.to_wide(..., with_ci=True)``'s strings)."""
    if with_ci and "ci_low" not in tidy.columns:
        raise ValueError("with_ci=True needs a table computed with bootstrap > 0 (it has no ci_low column)")
    tidy = tidy.with_columns(metric_key_expr().alias("name"))
    parts = {"value": "", "ci_low": "_low", "ci_high": "_high"} if with_ci else {"value": ""}
    long = pl.concat([tidy.select("model", (pl.col("name") + suffix).alias("column"),
                                  pl.col(part).cast(pl.Float64).round(digits).alias("v"))
                      for part, suffix in parts.items()])
    order = [n + suffix for n in tidy["name"].unique(maintain_order=True) for suffix in parts.values()]
    return _as_results_table(long.pivot("column", index="model", values="v").select("model", *order), digits)


def _as_results_table(frame: pl.DataFrame, digits: int) -> ResultsTable:
    table = ResultsTable._from_pydf(frame._df)
    table.digits = digits
    return table


def grid_search(make_model: Callable[..., Recommender], grid: Mapping[str, Sequence[Any]], train: pl.DataFrame,
                valid: pl.DataFrame, *, metric: str = "ndcg", k: int = 10, metrics: Sequence[str] | None = None,
                bootstrap: int = 0, seed: int = 0) -> tuple[dict[str, Any], pl.DataFrame]:
    """Choose hyper-parameters on validation: fit ``make_model(**setting)`` on ``train`` for every
    combination of ``grid`` (a mapping name → values), score ``valid``, keep the best ``metric@k``.

    Returns ``(best setting, table)``; the table is tidy — the setting's columns, then ``metric, k,
    value`` (+ ``ci_low, ci_high`` with ``bootstrap``) — for every metric computed (``metrics``,
    default just ``metric``). Ties go to the first setting in grid order.
    """
    names = list(grid)
    rows = []
    best, best_value = None, -np.inf
    for values in itertools.product(*(grid[n] for n in names)):
        setting = dict(zip(names, values))
        report = fit_and_evaluate(make_model(**setting), train, valid, k=k, metrics=metrics or [metric],
                                  bootstrap=bootstrap, seed=seed)
        value = report.value(metric, k)
        if value > best_value:
            best, best_value = setting, value
        rows.append(report.metrics.drop("model").with_columns(
            [pl.lit(v).alias(n) for n, v in setting.items()]))
    table = pl.concat(rows, how="vertical_relaxed")
    return best, table.select(*names, *[c for c in table.columns if c not in names])


def cross_validate(models: Mapping[str, Callable[[], Recommender]], folds: Sequence[Split], *,
                   k: int | Iterable[int] = 10, metrics: Sequence[str] | None = None,
                   filter_viewed: bool = True) -> pl.DataFrame:
    """Fit every model (a factory, so each fold gets a fresh one) on every fold's train part and score
    its test part: a tidy table ``fold, model, metric, k, value, n_users`` plus the fold's fit and
    recommend seconds. Summarise with ``table.group_by("model", "metric", "k").agg(...)``."""
    rows = []
    for f, split in enumerate(folds):
        for name, make in models.items():
            report = fit_and_evaluate(make(), split.train, split.test, k=k, metrics=metrics, name=name,
                                      filter_viewed=filter_viewed)
            rows.append(report.metrics.with_columns(pl.lit(f).alias("fold"),
                                                    pl.lit(report.fit_seconds).alias("fit_s"),
                                                    pl.lit(report.recommend_seconds).alias("recommend_s")))
    table = pl.concat(rows, how="vertical_relaxed")
    return table.select("fold", *[c for c in table.columns if c != "fold"])


@dataclass(frozen=True)
class PairSeparation:
    """Scores of held-out real pairs and of random pairs for the same users, and the AUC between them
    (the probability that a real pair outscores a random one; ties count one half)."""

    real: np.ndarray
    random: np.ndarray
    auc: float


def real_vs_random(model: Recommender, test: pl.DataFrame, *, seed: int = 0) -> PairSeparation:
    """How well ``model.score_pairs`` separates ``test``'s pairs (users and items known to the model)
    from the same users paired with uniformly drawn catalogue items."""
    if not hasattr(model, "score_pairs"):
        raise TypeError(f"{model.name} has no score_pairs(users, items)")
    known = test.filter(model.users_.contains(test[Columns.user]) & model.items_.contains(test[Columns.item]))
    if known.is_empty():
        raise EmptySplitError("no test pair has a user and an item the model knows")
    rng = np.random.default_rng(seed)
    random_items = model.items_.ids.gather(rng.integers(0, len(model.items_), known.height))
    real = model.score_pairs(known[Columns.user], known[Columns.item])
    fake = model.score_pairs(known[Columns.user], random_items)
    ranks = np.searchsorted(np.sort(fake), real, side="left"), np.searchsorted(np.sort(fake), real, side="right")
    auc = float((ranks[0] + ranks[1]).sum() / (2.0 * len(real) * len(fake)))  # Mann–Whitney U / (n·m)
    return PairSeparation(real, fake, auc)
