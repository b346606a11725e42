"""The three homework assignments through the whole grader (sandboxed notebook and cases stages): the reference
solution gets full marks, the untouched template zero with a reason for every item, and neither changes anything
outside the grading's own folders. Slow: each grading re-executes a notebook on ML-100K (hw1 ~1 min, hw2 and hw3
~2–3 min for the reference, which also trains the models of the quality and leaderboard cases)."""

from __future__ import annotations

import pytest

from seminar_lib.grading import grade_submission
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


@pytest.mark.slow
@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_untouched_template_scores_zero_with_a_reason_for_every_item(assignment, untouched):
    report = grade_submission(HOMEWORK_DIR / assignment / "template", assignment)
    automatic = [i for i in report.items if not i.manual]
    assert report.status == "graded" and report.earned == 0, report.to_markdown()
    for item in automatic:
        assert item.earned == 0 and "NotImplementedError" in item.reason, (item.name, item.reason)
    assert all(i.earned == 0 for i in report.items if i.manual)
