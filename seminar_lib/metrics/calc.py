"""``evaluate``: many metrics at several cut-offs from one merge, with bootstrap confidence intervals."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError
from seminar_lib.metrics.context import EvalContext
from seminar_lib.metrics.definitions import METRICS, MetricDef
from seminar_lib.metrics.keys import metric_key, metric_key_expr, split_key

U = Columns.user


def _as_ks(k: int | Iterable[int]) -> tuple[int, ...]:
    ks = (k,) if isinstance(k, (int, np.integer)) else tuple(k)
    if not ks or any(int(x) < 1 for x in ks):
        raise ValueError(f"cut-offs k must be positive integers, got {k!r}")
    return tuple(sorted({int(x) for x in ks}))


def _select_metrics(ctx: EvalContext, metrics: Sequence[str] | None) -> list[MetricDef]:
    if metrics is None:
        return [m for m in METRICS.values() if m.by_default and all(ctx.has(n) for n in m.needs)]
    chosen = []
    for name in metrics:
        if name not in METRICS:
            raise ValueError(f"unknown metric {name!r}; known metrics: {', '.join(METRICS)}")
        m = METRICS[name]
        missing = [n for n in m.needs if not ctx.has(n)]
        if missing:
            args = {"test": "test=", "train": "train=", "catalog": "catalog= (or train=)", "ref_recos": "ref_recos="}
            raise SchemaError(f"metric {name!r} needs {', '.join(args[n] for n in missing)}; pass it to evaluate()")
        chosen.append(m)
    return chosen


def per_user_metrics(recos: pl.DataFrame, test: pl.DataFrame | None = None, *, train: pl.DataFrame | None = None,
                     k: int | Iterable[int] = 10, metrics: Sequence[str] | None = None,
                     catalog: Iterable | None = None, ref_recos: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """Per-user values: ``{metric name: DataFrame[user_id, "<name>@<k>", …]}``.

    Accuracy metrics have a row for every test user; beyond-accuracy metrics for every
    recommended user (null where a user has no recommendation at rank ≤ k); ``coverage`` one row
    with a null user.
    """
    ks = _as_ks(k)
    ctx = EvalContext(recos, test, train, catalog, ref_recos, max_k=max(ks))
    return {m.name: m.per_user(ctx, ks) for m in _select_metrics(ctx, metrics)}


def evaluate(recos: pl.DataFrame, test: pl.DataFrame | None = None, *, train: pl.DataFrame | None = None,
             k: int | Iterable[int] = 10, metrics: Sequence[str] | None = None, catalog: Iterable | None = None,
             ref_recos: pl.DataFrame | None = None, bootstrap: int = 0, confidence: float = 0.95,
             seed: int = 0) -> pl.DataFrame:
    """All requested metrics at all cut-offs, as a tidy table.

    Args:
        recos: ``user_id, item_id, rank`` (rank 1 = first).
        test: held-out interactions (``user_id, item_id``).
        train: previous interactions (for novelty, serendipity, popularity; default catalogue).
        k: one cut-off or several.
        metrics: names from :data:`~seminar_lib.metrics.definitions.METRICS`; default: every metric whose
            inputs are given (except variants asked for by name, such as ``ndcg_achievable``).
        catalog: recommendable item ids (default: the items of ``train``).
        ref_recos: reference recommendations (for ``intersection``).
        bootstrap: number of bootstrap resamples of the evaluated users for confidence intervals
            (0: none). Resampling is seeded by ``seed``.
        confidence: the interval's coverage (percentile bootstrap).

    Returns:
        ``metric, k, value, n_users`` (+ ``ci_low, ci_high`` with ``bootstrap > 0``), in the order of
        ``METRICS`` then k. Accuracy metrics average over the test users (a user without
        recommendations scores 0); beyond-accuracy metrics over the recommended users;
        ``coverage`` is one number for the table (no interval).

    >>> recos = pl.DataFrame({"user_id": [1, 1, 2, 2], "item_id": [10, 20, 10, 30], "rank": [1, 2, 1, 2]})
    >>> test = pl.DataFrame({"user_id": [1, 2], "item_id": [20, 40]})
    >>> evaluate(recos, test, k=2, metrics=["hit_rate", "mrr"])["value"].to_list()
    [0.5, 0.25]
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    per_user = per_user_metrics(recos, test, train=train, k=k, metrics=metrics, catalog=catalog, ref_recos=ref_recos)
    rng = np.random.default_rng(seed)
    rows = []
    for name, table in per_user.items():
        cols = [c for c in table.columns if c != U]
        values = table.select(cols).to_numpy().astype(np.float64)
        counts = (~np.isnan(values)).sum(axis=0)
        # a mean over no users (no test users, or nobody got a recommendation) is undefined: NaN
        means = np.where(counts > 0, np.nansum(values, axis=0) / np.maximum(counts, 1), np.nan)
        lows = highs = np.full(len(cols), np.nan)
        if bootstrap and METRICS[name].users != "catalog" and values.shape[0]:
            boot = bootstrap_means(values, bootstrap, rng)
            alpha = (1 - confidence) / 2
            lows, highs = np.nanquantile(boot, alpha, axis=0), np.nanquantile(boot, 1 - alpha, axis=0)
        for j, col in enumerate(cols):
            row = {"metric": name, "k": split_key(col)[1], "value": float(means[j]),
                   "n_users": int(counts[j]) if METRICS[name].users != "catalog" else 0}
            if bootstrap:
                row |= {"ci_low": float(lows[j]), "ci_high": float(highs[j])}
            rows.append(row)
    schema = {"metric": pl.String, "k": pl.Int64, "value": pl.Float64, "n_users": pl.Int64}
    if bootstrap:
        schema |= {"ci_low": pl.Float64, "ci_high": pl.Float64}
    out = pl.DataFrame(rows, schema=schema)
    return out.select("metric", "k", "value", *(["ci_low", "ci_high"] if bootstrap else []), "n_users")


def _format_cell(value: float, low: float, high: float, digits: int) -> str:
    """``"0.141 [0.096, 0.187]"``; without an interval just the value; ``"–"`` for an undefined value."""
    if value is None or np.isnan(value):
        return "–"
    if low is None or np.isnan(low):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def bootstrap_means(values: np.ndarray, n_boot: int, rng: np.random.Generator, chunk_cells: int = 4_000_000) -> np.ndarray:
    """Means of ``values`` (``n_users × m``, NaN = no value) over ``n_boot`` resamples of the rows.

    A resample draws ``n_users`` rows with replacement; it is applied as integer weights
    ``W`` (``b × n_users``, a chunk of resamples at a time), so the means are ``(W·X) / (W·1_{X≠NaN})``:
    one matrix product per chunk. Returns ``n_boot × m``.
    """
    n, m = values.shape
    present = (~np.isnan(values)).astype(np.float64)
    filled = np.nan_to_num(values, nan=0.0)
    out = np.empty((n_boot, m))
    step = max(1, chunk_cells // max(n, 1))
    for start in range(0, n_boot, step):
        b = min(step, n_boot - start)
        idx = rng.integers(0, n, size=(b, n)) + (np.arange(b) * n)[:, None]
        weights = np.bincount(idx.ravel(), minlength=b * n).reshape(b, n).astype(np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[start:start + b] = (weights @ filled) / (weights @ present)
    return out


def to_wide(table: pl.DataFrame, digits: int | None = None, with_ci: bool = False) -> pl.DataFrame:
    """One row per model (if a ``model`` column is present) with a ``<metric>@<k>`` column per value.

    With ``with_ci`` and a bootstrapped table, each cell is ``"value [low, high]"`` (strings).
    """
    df = table.with_columns(metric_key_expr().alias("name"))
    value = pl.col("value") if digits is None else pl.col("value").round(digits)
    if with_ci:
        if "ci_low" not in df.columns:
            raise ValueError("with_ci=True needs a table computed with bootstrap > 0")
        d = 3 if digits is None else digits
        cells = [_format_cell(v, lo, hi, d) for v, lo, hi in df.select("value", "ci_low", "ci_high").iter_rows()]
        value = pl.Series("value", cells, dtype=pl.String)
    index = ["model"] if "model" in df.columns else []
    order = df["name"].unique(maintain_order=True).to_list()
    if not index:
        return df.select("name", value.alias("value")).transpose(column_names="name").select(order)
    wide = df.select(*index, "name", value.alias("value")).pivot("name", index=index, values="value")
    return wide.select(*index, *order)


def paired_difference(recos_a: pl.DataFrame, recos_b: pl.DataFrame, test: pl.DataFrame, *, metric: str = "ndcg",
                      k: int = 10, bootstrap: int = 2000, confidence: float = 0.95, seed: int = 0,
                      train: pl.DataFrame | None = None) -> dict[str, float]:
    """Is model A better than model B? A paired bootstrap over the test users.

    Both lists are scored on the same users (accuracy metrics: all test users), the per-user
    differences :math:`d_u = m_A(u) - m_B(u)` are resampled, and the percentile interval of their
    mean is returned: ``{"a", "b", "diff", "ci_low", "ci_high", "significant"}`` — significant when the
    interval excludes 0. Pairing removes the between-user variance both models share, so it detects
    smaller differences than comparing two separate intervals.
    """
    if METRICS[metric].users != "test":
        raise ValueError(f"paired_difference needs a per-test-user metric, not {metric!r}")
    a = per_user_metrics(recos_a, test, train=train, k=k, metrics=[metric])[metric]
    b = per_user_metrics(recos_b, test, train=train, k=k, metrics=[metric])[metric]
    col = metric_key(metric, k)
    joined = a.join(b, on=U, suffix="_b").sort(U)
    diff = (joined[col] - joined[f"{col}_b"]).to_numpy()[:, None]
    boot = bootstrap_means(diff, bootstrap, np.random.default_rng(seed))[:, 0]
    alpha = (1 - confidence) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return {"a": float(joined[col].mean()), "b": float(joined[f"{col}_b"].mean()), "diff": float(diff.mean()),
            "ci_low": float(low), "ci_high": float(high), "significant": bool(low > 0 or high < 0)}
