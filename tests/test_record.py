"""Recorded metrics: record_metrics (display and the *.metrics.json file) and reading them back."""

from __future__ import annotations

import json

import nbformat
import polars as pl
import pytest

from seminar_lib.record import (MIME, collect_metrics, leaderboard, markdown_table, read_recorded_metrics, record_metrics,
                                split_key)


def test_record_metrics_displays_rounded_json_and_writes_full_precision(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SEMINAR_RUN_DIR", str(tmp_path))
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    record_metrics("99_demo", {"EASE": {"ndcg@10": 0.123456789, "coverage@10": float("nan")}}, best=500)
    assert shown[MIME] == {"notebook": "99_demo", "metrics": {"EASE": {"ndcg@10": 0.1235, "coverage@10": None}},
                           "best": 500}
    assert "EASE" in shown["text/plain"] and "0.1235" in shown["text/plain"]
    saved = json.loads((tmp_path / "99_demo.metrics.json").read_text())
    assert saved["metrics"]["EASE"]["ndcg@10"] == 0.123456789


def test_record_metrics_shows_a_metric_a_row_and_a_model_a_column(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    record_metrics("x", {"EASE": {"ndcg@10": 0.2, "recall@10": 0.25, "ndcg@5": 0.1}, "Pop": {"ndcg@10": 0.123456}})
    assert shown["text/plain"] == (
        "recorded metrics of x\n"
        "metric       EASE     Pop\n"
        "ndcg@5     0.1000       -\n"
        "ndcg@10    0.2000  0.1235\n"
        "recall@10  0.2500       -")
    assert "<td style=\"text-align:right;\">0.1235</td>" in shown["text/html"]


def test_record_metrics_splits_many_models_into_blocks_of_at_most_100_columns(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    models = {f"SASRec(loss_number_{i})": {f"{m}@{k}": i / 10 for m in ("ndcg", "hit_rate", "coverage")
                                           for k in (5, 10, 20)} for i in range(9)}
    record_metrics("wide", models)
    text = shown["text/plain"]
    blocks = text.split("\n\n")
    assert max(len(line) for line in text.splitlines()) <= 100 and len(blocks) == 3
    assert all(b.splitlines()[-1].startswith("ndcg@20") for b in blocks)  # every block has every metric
    headers = [line for line in text.splitlines() if line.startswith("metric ")]
    assert len(headers) == 3 and sum(h.count("SASRec(") for h in headers) == 9


def test_record_metrics_accepts_a_tidy_table(monkeypatch):
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    table = pl.DataFrame({"model": ["A", "A"], "metric": ["ndcg", "recall"], "k": [10, 10], "value": [0.2, 0.3]})
    record_metrics("x", table)
    assert shown[MIME]["metrics"] == {"A": {"ndcg@10": 0.2, "recall@10": 0.3}}


def test_read_recorded_metrics(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", data={MIME: {"notebook": "n", "metrics": {}},
                                                                         "text/plain": "t"})]
    path = tmp_path / "n.ipynb"
    nbformat.write(nb, path)
    assert read_recorded_metrics(path)["notebook"] == "n"
    nb.cells[0].outputs = []
    nbformat.write(nb, path)
    with pytest.raises(ValueError, match="no recorded metrics"):
        read_recorded_metrics(path)


def test_markdown_table():
    table = markdown_table(pl.DataFrame({"model": ["A"], "ndcg@10": [0.123456], "x": [None]}))
    assert table.splitlines() == ["| model | ndcg@10 | x |", "| --- | --- | --- |", "| A | 0.1235 | – |"]


def test_collect_metrics_reads_structured_rows_and_the_leaderboard_pivots_one_k(tmp_path, monkeypatch):
    monkeypatch.setenv("SEMINAR_RUN_DIR", str(tmp_path))
    monkeypatch.setattr("IPython.display.display", lambda *a, **k: None)
    record_metrics("02_b", {"EASE": {"ndcg@10": 0.2, "ndcg@5": 0.25, "coverage@10": 0.3}, "Pop": {"ndcg@10": 0.1}})
    record_metrics("01_a", {"ALS": {"ndcg@10": 0.3, "auc": 0.9}})
    rows = collect_metrics(tmp_path)
    assert rows.columns == ["notebook", "model", "metric", "k", "value"]
    assert sorted(rows.filter(pl.col("model") == "EASE").select("metric", "k", "value").rows()) == [
        ("coverage", 10, 0.3), ("ndcg", 5, 0.25), ("ndcg", 10, 0.2)]
    assert rows["notebook"].unique(maintain_order=True).to_list() == ["01_a", "02_b"]
    assert rows.filter(pl.col("metric") == "auc")["k"].to_list() == [None]
    board = leaderboard(tmp_path, k=10)
    assert board.columns == ["notebook", "model", "ndcg@10", "coverage@10"]
    assert board.select("model", "ndcg@10").rows() == [("ALS", 0.3), ("EASE", 0.2), ("Pop", 0.1)]
    assert split_key("hit_rate@20") == ("hit_rate", 20) and split_key("auc") == ("auc", None)
