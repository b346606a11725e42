"""Tables for people: results_table's numeric frame and its display, the text/HTML grid behind it."""

from __future__ import annotations

import polars as pl
import pytest

from seminar_lib.display import Column, Grid, Group
from seminar_lib.evaluation import Report, ResultsTable, comparison_table, results_table


def report(model: str, values: dict[str, tuple[float, float, float]], fit: float = 1.234) -> Report:
    rows = [{"model": model, "metric": m.split("@")[0], "k": int(m.split("@")[1]), "value": v, "ci_low": lo,
             "ci_high": hi} for m, (v, lo, hi) in values.items()]
    return Report(model, pl.DataFrame(rows), pl.DataFrame(), fit, 0.5)


REPORTS = [report("EASE", {"ndcg@10": (0.21234, 0.18, 0.24), "coverage@10": (0.5, float("nan"), float("nan"))}),
           report("TopPopular", {"ndcg@10": (0.14, 0.1, 0.19), "coverage@10": (0.04, None, None)})]


def test_results_table_is_numeric_with_intervals_in_their_own_columns():
    table = results_table(REPORTS, with_ci=True, digits=3)
    assert table.columns == ["model", "ndcg@10", "ndcg@10_low", "ndcg@10_high", "coverage@10", "coverage@10_low",
                             "coverage@10_high", "fit_s", "recommend_s"]
    assert all(dtype == pl.Float64 for dtype in table.dtypes[1:])
    assert table.row(0)[:4] == ("EASE", 0.212, 0.18, 0.24) and table.row(0)[4] == 0.5
    assert table.row(1)[5:] == (None, None, 1.23, 0.5)  # a metric without an interval (coverage) has none
    plain = results_table(REPORTS, times=False)
    assert plain.columns == ["model", "ndcg@10", "coverage@10"] and plain["ndcg@10"].to_list() == [0.2123, 0.14]
    assert type(plain.filter(pl.col("model") == "EASE")) is pl.DataFrame  # derived frames display as polars does


def test_results_table_displays_aligned_numbers_without_quotes_or_dtypes():
    table = results_table(REPORTS, with_ci=True, digits=3)
    assert repr(table) == str(table) == (
        "                  ndcg@10\n"
        "model       value    low   high  coverage@10  fit_s  recommend_s\n"
        "EASE        0.212  0.180  0.240        0.500   1.23         0.50\n"
        "TopPopular  0.140  0.100  0.190        0.040   1.23         0.50")
    html = table._repr_html_()
    assert '<th colspan="3" style="text-align:center">ndcg@10</th>' in html and "&quot;" not in html
    assert '<td style="text-align:right;color:#777;">0.180</td>' in html and "f64" not in html


def test_results_table_needs_bootstrapped_reports_for_intervals():
    bare = Report("A", pl.DataFrame({"model": ["A"], "metric": ["ndcg"], "k": [10], "value": [0.1]}), pl.DataFrame(),
                  0.0, 0.0)
    with pytest.raises(ValueError, match="bootstrap > 0"):
        results_table([bare], with_ci=True)


def test_wide_results_split_into_blocks_within_100_characters():
    metrics = {f"{m}@{k}": (0.1, 0.05, 0.15) for m in ("hit_rate", "ndcg", "recall", "map", "mrr") for k in (5, 10)}
    table = results_table([report("SASRec(in_batch_logq)", metrics), report("TopPopular", metrics)], with_ci=True)
    lines = repr(table).splitlines()
    assert max(map(len, lines)) <= 100
    blocks = repr(table).split("\n\n")
    assert len(blocks) > 1 and all(b.splitlines()[-1].startswith("TopPopular") for b in blocks)
    assert sum(b.splitlines()[0].count("@") for b in blocks) == 10  # each metric's title shown once
    assert table._repr_html_().count("<table") == len(blocks)


def test_grid_keeps_one_group_a_block_even_when_wider_than_the_limit_and_checks_lengths():
    wide = Grid("m", ["a"], [Group("x" * 30, [Column("x" * 30, ["1"])]), Group("y", [Column("y", ["2"])])])
    assert [len(b) for b in wide.blocks(width=20)] == [1, 1]
    assert wide.text(width=20).split("\n\n")[1] == "m  y\na  2"
    with pytest.raises(ValueError, match="has 2 cells for 1 rows"):
        Grid("m", ["a"], [Group("g", [Column("g", ["1", "2"])])])


def test_comparison_table_of_a_tidy_table_without_a_fit_to_report():
    tidy = pl.DataFrame({"model": ["SASRec", "SASRec", "Pop"], "metric": ["ndcg", "ndcg", "ndcg"], "k": [5, 10, 10],
                         "value": [0.3, 0.25, 0.1], "ci_low": [0.2, 0.2, 0.05], "ci_high": [0.4, 0.3, 0.15],
                         "n_users": [9, 9, 9]})
    table = comparison_table(tidy, with_ci=True, digits=2)
    assert isinstance(table, ResultsTable) and table.columns == [
        "model", "ndcg@5", "ndcg@5_low", "ndcg@5_high", "ndcg@10", "ndcg@10_low", "ndcg@10_high"]
    assert table.row(1) == ("Pop", None, None, None, 0.1, 0.05, 0.15)  # a model without ndcg@5
    with pytest.raises(ValueError, match="bootstrap > 0"):
        comparison_table(tidy.drop("ci_low", "ci_high"), with_ci=True)
