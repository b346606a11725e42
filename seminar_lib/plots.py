"""Plots shared by the notebooks (matplotlib + seaborn). Each function draws on ``ax`` (or a new
figure) and returns the axes."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import matplotlib.ticker as mticker
import numpy as np
import polars as pl
import seaborn as sns

from seminar_lib.columns import Columns
from seminar_lib.metrics.keys import metric_key
from seminar_lib.splits import Split

U, I, T = Columns.user, Columns.item, Columns.timestamp


def _axes(ax: plt.Axes | None, size: tuple[float, float] = (7, 4)) -> plt.Axes:
    return ax if ax is not None else plt.subplots(figsize=size)[1]


def plot_long_tail(interactions: pl.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Item popularity by rank (log scale) and, on a second axis, the cumulative share of interactions."""
    ax = _axes(ax)
    counts = np.sort(interactions.group_by(I).len()["len"].to_numpy())[::-1]
    ranks = np.arange(1, len(counts) + 1)
    ax.plot(ranks, counts, color="tab:blue")
    ax.set(yscale="log", xlabel="item rank by popularity", ylabel="interactions (log)", title="Long tail")
    twin = ax.twinx()
    twin.plot(ranks, np.cumsum(counts) / counts.sum(), color="tab:orange")
    twin.set(ylabel="cumulative share of interactions", ylim=(0, 1.02))
    top = int(np.searchsorted(np.cumsum(counts) / counts.sum(), 0.5)) + 1
    twin.axvline(top, color="grey", ls=":")
    twin.annotate(f"{top} items ({top / len(counts):.0%}) = half of all interactions", (top, 0.5),
                  xytext=(8, -12), textcoords="offset points", fontsize=9)
    return ax


def plot_user_activity(interactions: pl.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Histogram of interactions per user (log-spaced bins)."""
    ax = _axes(ax)
    per_user = interactions.group_by(U).len()["len"].to_numpy()
    bins = np.logspace(np.log10(per_user.min()), np.log10(per_user.max() + 1), 30)
    ax.hist(per_user, bins=bins, color="tab:green", alpha=0.8, edgecolor="none")
    ax.set(xscale="log", xlabel="interactions per user (log)", ylabel="users", title="User activity")
    ax.xaxis.set_major_locator(mticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(mticker.ScalarFormatter())
    ax.xaxis.set_minor_formatter(mticker.NullFormatter())
    ax.axvline(np.median(per_user), color="black", ls="--", label=f"median {np.median(per_user):.0f}")
    ax.legend()
    return ax


def plot_activity_over_time(interactions: pl.DataFrame, split: Split | None = None, every: str = "1w",
                            ax: plt.Axes | None = None) -> plt.Axes:
    """Interactions per period (``every``, a polars duration such as ``"1w"``); with ``split``, the
    validation and test start times as vertical lines."""
    ax = _axes(ax, (9, 3.5))
    per = interactions.sort(T).group_by_dynamic(T, every=every).agg(pl.len())
    days = mdates.date2num(per[T].dt.replace_time_zone(None).to_numpy())
    ax.bar(days, per["len"].to_numpy(), width=6, align="edge", color="tab:purple", alpha=0.8, edgecolor="none")
    ax.xaxis_date()
    period = {"1d": "day", "1w": "week", "1mo": "month"}.get(every, every)
    ax.set(ylabel="interactions", title=f"Interactions per {period}")
    if split is not None:
        for key, color in (("valid_start", "tab:orange"), ("test_start", "tab:red")):
            if key in split.info:
                ax.axvline(mdates.date2num(split.info[key].replace(tzinfo=None)), color=color, ls="--",
                           label=key.replace("_", " "))
        ax.legend()
    return ax


def plot_results(table: pl.DataFrame, metric: str = "ndcg", k: int = 10, ax: plt.Axes | None = None) -> plt.Axes:
    """Horizontal bars of one metric per model (a tidy table with ``model``), with bootstrap intervals
    as error bars when the table has ``ci_low``/``ci_high``."""
    rows = table.filter((pl.col("metric") == metric) & (pl.col("k") == k))
    if rows.is_empty():
        raise ValueError(f"the table has no {metric_key(metric, k)}")
    ax = _axes(ax, (7, 0.5 + 0.45 * rows.height))
    y = np.arange(rows.height)[::-1]
    values = rows["value"].to_numpy()
    xerr = None
    if "ci_low" in rows.columns:
        xerr = np.vstack([values - rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy() - values])
    colors = sns.color_palette("deep", rows.height)
    ax.barh(y, values, xerr=xerr, color=colors, capsize=3)
    ax.set_yticks(y, rows["model"].to_list())
    ax.set(xlabel=metric_key(metric, k) + (" (95% bootstrap interval)" if xerr is not None else ""))
    for yi, v in zip(y, values):
        ax.annotate(f"{v:.3f}", (v, yi), xytext=(4, 4), textcoords="offset points", fontsize=8)
    return ax


def plot_sweep(table: pl.DataFrame, param: str, metric: str = "ndcg", k: int = 10, *, logx: bool = True,
               ax: plt.Axes | None = None) -> plt.Axes:
    """A metric against one hyper-parameter, from :func:`seminar_lib.evaluation.grid_search`'s table
    (column ``param``, tidy ``metric, k, value`` and optional ``ci_low``/``ci_high`` drawn as a band);
    the best value is circled."""
    ax = _axes(ax)
    rows = table.filter((pl.col("metric") == metric) & (pl.col("k") == k)).sort(param)
    xs, ys = rows[param].to_numpy(), rows["value"].to_numpy()
    ax.plot(xs, ys, marker="o")
    if "ci_low" in rows.columns:
        ax.fill_between(xs, rows["ci_low"].to_numpy(), rows["ci_high"].to_numpy(), alpha=0.2)
    best = int(np.argmax(ys))
    ax.scatter([xs[best]], [ys[best]], s=120, facecolors="none", edgecolors="red", zorder=3, label=f"best: {xs[best]:g}")
    ax.set(xscale="log" if logx else "linear", xlabel=param + (" (log scale)" if logx else ""),
           ylabel=metric_key(metric, k))
    ax.legend()
    return ax


def notebook_style() -> None:
    """Display settings shared by every notebook: wide polars tables without the shape line, and a
    seaborn theme with a fixed figure resolution (so committed images are the same size everywhere)."""
    pl.Config.set_tbl_width_chars(170)
    pl.Config.set_fmt_str_lengths(40)
    pl.Config.set_tbl_hide_dataframe_shape(True)
    pl.Config.set_tbl_rows(25)
    sns.set_theme(style="whitegrid", context="notebook")
    plt.rcParams.update({"figure.dpi": 80, "savefig.dpi": 80, "figure.figsize": (7, 4)})


def plot_separation(real: np.ndarray, random: np.ndarray, *, title: str = "", standardize: bool = False,
                    ax: plt.Axes | None = None) -> plt.Axes:
    """Densities of the scores of real (held-out) pairs and of random pairs; with ``standardize`` both
    are centred and scaled by the random pairs' mean and deviation, so models on different scales compare."""
    ax = _axes(ax)
    if standardize:
        mean, std = random.mean(), random.std() or 1.0
        real, random = (real - mean) / std, (random - mean) / std
    sns.kdeplot(real, fill=True, label="real pairs", ax=ax)
    sns.kdeplot(random, fill=True, label="random pairs", ax=ax)
    ax.set(title=title, xlabel="score" + (" (standardized by the random pairs)" if standardize else ""))
    ax.legend()
    return ax


def plot_embedding_map(vectors: np.ndarray, labels: Sequence[str], *, seed: int = 0, top: int = 8,
                       ax: plt.Axes | None = None) -> plt.Axes:
    """A 2-D t-SNE map of ``vectors`` (``n × d``), coloured by ``labels`` (the ``top`` most frequent;
    the rest grey)."""
    from sklearn.manifold import TSNE

    ax = _axes(ax, (8, 6.5))
    xy = TSNE(n_components=2, init="pca", random_state=seed, perplexity=min(30, len(vectors) - 1),
              metric="cosine").fit_transform(np.asarray(vectors, dtype=np.float64))
    labels = pl.Series("label", list(labels), dtype=pl.String).fill_null("unknown")
    counts = labels.to_frame().group_by("label").len().sort(["len", "label"], descending=[True, False])
    common = counts["label"].head(top).to_list()
    mask = labels.is_in(common).to_numpy()
    ax.scatter(xy[~mask, 0], xy[~mask, 1], s=6, c="lightgrey", label="other")
    palette = sns.color_palette("tab10", len(common))
    for color, label in zip(palette, common):
        sel = (labels == label).to_numpy()
        ax.scatter(xy[sel, 0], xy[sel, 1], s=8, color=color, label=label)
    ax.set(xticks=[], yticks=[], title="Item embeddings (t-SNE)")
    ax.legend(markerscale=2, fontsize=8, loc="best")
    return ax
