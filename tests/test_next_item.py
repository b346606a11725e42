"""The next-item report's ``name=``: a ``model`` column, so reports concatenate into one long table that
record_metrics and comparison_table take as it is."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest

from seminar_lib.evaluation import comparison_table
from seminar_lib.models import TopPopular
from seminar_lib.next_item import evaluate_next_item, next_item_samples
from seminar_lib.record import MIME, metrics_from_table, record_metrics


@pytest.fixture
def fitted():
    rows = [(1, 10, 0), (1, 11, 1), (1, 12, 2), (2, 10, 0), (2, 12, 2), (3, 11, 0), (3, 10, 3)]
    df = pl.DataFrame({"user_id": [u for u, _, _ in rows], "item_id": [i for _, i, _ in rows],
                       "timestamp": [datetime(2024, 1, 1) + timedelta(days=d) for _, _, d in rows]})
    return TopPopular().fit(df), next_item_samples(df, start=datetime(2024, 1, 2))


def test_without_a_name_the_report_is_as_before(fitted):
    model, samples = fitted
    report = evaluate_next_item(model, samples, k=(1, 2))
    assert report.model is None and "model" not in report.metrics.columns
    assert report.metrics.columns == ["metric", "k", "value", "n_users", "n_samples"]


def test_a_name_adds_a_model_column_and_changes_no_value(fitted):
    model, samples = fitted
    plain = evaluate_next_item(model, samples, k=(1, 2), bootstrap=20)
    named = evaluate_next_item(model, samples, k=(1, 2), bootstrap=20, name="Pop")
    assert named.model == "Pop" and named.metrics.columns[0] == "model"
    assert named.metrics["model"].unique().to_list() == ["Pop"]
    assert named.metrics.drop("model").equals(plain.metrics)
    assert named.value("ndcg", 2) == plain.value("ndcg", 2)


def test_named_reports_concatenate_into_what_record_metrics_takes(fitted, monkeypatch):
    model, samples = fitted
    reports = {name: evaluate_next_item(model, samples, k=(1, 2), filter_viewed=fv, name=name)
               for name, fv in (("Pop", True), ("Pop (seen)", False))}
    long = pl.concat([r.metrics for r in reports.values()])
    expected = {name: {f"{m}@{k}": r.value(m, k) for m in ("hit_rate", "ndcg", "coverage") for k in (1, 2)}
                for name, r in reports.items()}
    assert metrics_from_table(long) == expected
    shown = {}
    monkeypatch.setattr("IPython.display.display", lambda obj, raw: shown.update(obj))
    record_metrics("05_demo", long)
    assert set(shown[MIME]["metrics"]) == {"Pop", "Pop (seen)"}
    assert shown[MIME]["metrics"]["Pop"]["ndcg@2"] == round(expected["Pop"]["ndcg@2"], 4)
    assert comparison_table(long)["model"].to_list() == ["Pop", "Pop (seen)"]


def test_a_table_without_models_is_refused_with_a_reason(fitted):
    model, samples = fitted
    with pytest.raises(ValueError, match="name="):
        metrics_from_table(evaluate_next_item(model, samples).metrics)
