"""Every plot function renders on small data, labels what it draws, and warns about nothing."""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Iterator

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402
import pytest  # noqa: E402

from seminar_lib import plots  # noqa: E402
from seminar_lib.splits import global_time_split  # noqa: E402


@pytest.fixture
def interactions() -> pl.DataFrame:
    rng = np.random.default_rng(0)
    n = 400
    start = dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc)
    return pl.DataFrame({
        "user_id": rng.integers(0, 30, n),
        "item_id": rng.zipf(1.5, n).clip(max=60),
        "timestamp": [start + dt.timedelta(hours=int(h)) for h in np.sort(rng.integers(0, 24 * 70, n))],
        "weight": np.ones(n),
    }).with_columns(pl.col("timestamp").dt.cast_time_unit("us"))


@pytest.fixture(autouse=True)
def strict() -> Iterator[None]:
    """Any warning while drawing fails the test; every figure is closed afterwards."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def drawn(ax: plt.Axes) -> int:
    """How many artists carry data: lines, patches (bars), collections (scatter, fills)."""
    return len(ax.lines) + len(ax.patches) + len(ax.collections)


def test_long_tail_and_user_activity(interactions):
    ax = plots.plot_long_tail(interactions)
    assert ax.get_title() == "Long tail" and ax.get_yscale() == "log" and ax.get_xlabel() == "item rank by popularity"
    assert drawn(ax) >= 1
    ax = plots.plot_user_activity(interactions)
    assert ax.get_title() == "User activity" and ax.get_xscale() == "log" and ax.get_ylabel() == "users"
    assert drawn(ax) >= 1


def test_activity_over_time_marks_the_split(interactions):
    split = global_time_split(interactions)
    ax = plots.plot_activity_over_time(interactions, split)
    assert ax.get_title() == "Interactions per week" and ax.get_ylabel() == "interactions"
    weeks = interactions.sort("timestamp").group_by_dynamic("timestamp", every="1w").agg(pl.len()).height
    assert len(ax.patches) == weeks
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["valid start", "test start"]


def test_results_bars_with_intervals():
    table = pl.DataFrame({"model": ["A", "B"], "metric": ["ndcg", "ndcg"], "k": [10, 10], "value": [0.2, 0.1],
                          "ci_low": [0.15, 0.05], "ci_high": [0.25, 0.15]})
    ax = plots.plot_results(table)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B"]
    assert ax.get_xlabel() == "ndcg@10 (95% bootstrap interval)"
    assert sorted(round(p.get_width(), 6) for p in ax.patches) == [0.1, 0.2]
    with pytest.raises(ValueError, match="no recall@10"):
        plots.plot_results(table, metric="recall")


def test_sweep_circles_the_best_setting():
    table = pl.DataFrame({"lam": [1.0, 10.0, 100.0], "metric": ["ndcg"] * 3, "k": [10] * 3, "value": [0.1, 0.3, 0.2]})
    ax = plots.plot_sweep(table, "lam")
    assert ax.get_xscale() == "log" and ax.get_xlabel() == "lam (log scale)" and ax.get_ylabel() == "ndcg@10"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["best: 10"]
    assert ax.lines[0].get_ydata().tolist() == [0.1, 0.3, 0.2]


def test_separation_of_real_and_random_scores():
    rng = np.random.default_rng(1)
    ax = plots.plot_separation(rng.normal(1, 1, 200), rng.normal(0, 1, 200), title="MF", standardize=True)
    assert ax.get_title() == "MF" and ax.get_xlabel() == "score (standardized by the random pairs)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["real pairs", "random pairs"]
    assert len(ax.collections) == 2


def test_embedding_map_colours_the_most_frequent_labels():
    rng = np.random.default_rng(2)
    labels = ["drama"] * 20 + ["comedy"] * 12 + ["noir"] * 3 + [None] * 5
    ax = plots.plot_embedding_map(rng.normal(size=(len(labels), 8)), labels, top=2)
    assert ax.get_title() == "Item embeddings (t-SNE)"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["other", "drama", "comedy"]
    sizes = [len(c.get_offsets()) for c in ax.collections]
    assert sizes == [8, 20, 12]


def test_notebook_style_sets_the_figure_resolution():
    with pl.Config(), plt.rc_context():  # both restored afterwards: other tests see the defaults
        plots.notebook_style()
        assert plt.rcParams["figure.dpi"] == 80 and tuple(plt.rcParams["figure.figsize"]) == (7.0, 4.0)
