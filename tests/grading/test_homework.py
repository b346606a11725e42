"""The three homework assignments through the whole grader (sandboxed notebook and cases stages): the reference
solution gets full marks, the untouched template zero with a reason for every item, and neither changes anything
outside the grading's own folders. Slow: each grading re-executes a notebook on ML-100K (hw1 ~1 min, hw2 and hw3
~2–3 min for the reference, which also trains the models of the quality and leaderboard cases)."""

from __future__ import annotations

import pytest

from seminar_lib.grading import grade_submission
from seminar_lib.grading.cases import load_module
from seminar_lib.grading.grader import HOMEWORK_DIR

ASSIGNMENTS = ["hw1_metrics_knn", "hw2_dssm", "hw3_sasrec"]
MEASURED = {"hw2_dssm": "leaderboard", "hw3_sasrec": "quality"}  # items whose check reports a value


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_solution_gets_full_marks(assignment, untouched):
    report = grade_submission(HOMEWORK_DIR / assignment / "private" / "reference", assignment)
    automatic = [i for i in report.items if not i.manual]
    assert report.status == "graded" and automatic, report.to_markdown()
    assert all(i.earned == i.points for i in automatic), report.to_markdown()
    assert {"notebook_runs", "notebook_reproducible"} <= {i.name for i in automatic}
    assert report.earned == min(sum(i.points for i in automatic), report.total)
    if assignment in MEASURED:
        assert report.item(MEASURED[assignment]).value is not None
    # the margins the READMEs state, on the grader's own sandboxed run of the reference's cases
    if assignment == "hw2_dssm":  # its blend beats ALS(seed=42)'s 0.2087; its parts train past 0.2
        assert report.item("leaderboard").value > 0.2087, report.to_markdown()
        assert min(report.item(i).value for i in ("loss_trains", "feature_embedding_trains", "tower_trains")) > 0.2
    if assignment == "hw3_sasrec":  # 0.0524 against the bar 0.045
        bar = load_module(HOMEWORK_DIR / assignment / "private" / "cases.py", "_hw3_cases_for_bar").QUALITY_BAR
        assert report.item("quality").value > bar + 0.005, report.to_markdown()


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_template_scores_zero_with_a_reason_for_every_item(assignment, untouched):
    report = grade_submission(HOMEWORK_DIR / assignment / "template", assignment)
    automatic = [i for i in report.items if not i.manual]
    assert report.status == "graded" and report.earned == 0, report.to_markdown()
    for item in automatic:
        assert item.earned == 0 and "NotImplementedError" in item.reason, (item.name, item.reason)
    assert all(i.earned == 0 for i in report.items if i.manual)
