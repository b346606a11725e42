"""The grader: full marks for the reference solution, zero with reasons for broken submissions."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from seminar_lib.grade import HOMEWORK_DIR, grade, main

ROOT = Path(__file__).resolve().parents[1]
HW1 = HOMEWORK_DIR / "hw1_metrics_ease"
BROKEN = Path(__file__).parent / "fixtures" / "submissions" / "hw1_metrics_ease"


def items(report) -> dict[str, tuple[float, str]]:
    return {i.name: (i.earned, i.reason) for i in report.items}


@pytest.mark.slow
def test_reference_solution_gets_full_marks(tmp_path):
    code = main([str(HW1 / "private" / "reference"), "--assignment", "hw1_metrics_ease", "--report", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["earned"] == report["total"] == 20
    assert report["seconds"] < 120  # the target: a submission is graded in under 2 minutes
    assert "| test_ease_weights | 4 | 4 | ok |" in (tmp_path / "report.md").read_text()


@pytest.mark.slow
def test_the_untouched_template_scores_zero_with_reasons():
    got = items(grade(HW1 / "template", "hw1_metrics_ease"))
    assert all(earned == 0 for earned, _ in got.values())
    assert "NotImplementedError" in got["notebook_runs"][1]
    assert "not reproducible" in got["notebook_reproducible"][1]
    assert "NotImplementedError" in got["test_ndcg"][1]


def test_syntax_error_and_missing_notebook():
    got = items(grade(BROKEN / "syntax_error", "hw1_metrics_ease"))
    assert all(earned == 0 for earned, _ in got.values())
    assert "missing file: hw1_metrics_ease.ipynb" in got["notebook_runs"][1]
    assert "cannot be imported: SyntaxError" in got["test_precision"][1]


def test_wrong_signatures():
    got = items(grade(BROKEN / "wrong_signature", "hw1_metrics_ease"))
    assert got["test_recall"][0] == 0 and "TypeError" in got["test_recall"][1]
    assert got["test_ease_weights"][0] == 0 and "TypeError" in got["test_ease_weights"][1]


def test_missing_files():
    got = items(grade(BROKEN / "missing_file", "hw1_metrics_ease"))
    assert all(earned == 0 for earned, _ in got.values())
    assert "solution.py is missing" in got["test_map"][1]


@pytest.mark.slow
def test_infinite_loops_time_out_instead_of_hanging():
    report = grade(BROKEN / "infinite_loop", "hw1_metrics_ease", cell_timeout=3, test_timeout=2)
    got = items(report)
    assert all(earned == 0 for earned, _ in got.values())
    assert "Timeout" in got["test_ndcg"][1] or "timeout" in got["test_ndcg"][1].lower()
    assert "NotImplementedError" in got["test_map"][1]
    assert got["notebook_runs"][1]  # the cell timeout is reported
    assert report.seconds < 120


def test_private_parts_are_excluded_from_the_student_release(tmp_path):
    """Students get `git archive` of this repository: .gitattributes marks homework/*/private export-ignore."""
    attributes = (ROOT / ".gitattributes").read_text()
    assert "homework/*/private export-ignore" in attributes
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    import io
    import tarfile
    names = tarfile.open(fileobj=io.BytesIO(archive)).getnames()
    assert any(n.startswith("homework/hw1_metrics_ease/template/") for n in names)
    assert not any("/private/" in n or n.endswith("/private") for n in names)


def test_report_caps_points_and_lists_manual_items():
    from seminar_lib.grade import Item, Report

    report = Report("hw", "sub", items=[Item("a", 20, 20.0), Item("b", 10, 0.0), Item("c", 8, manual=True)],
                    max_points=25)
    assert report.total == 25 and report.earned == 20 and report.pending == 8
    text = report.to_markdown()
    assert "20 / 25 points (+ up to 5 after manual review)" in text and "| c | 8 | manual |" in text
    report.items[1].earned = 10.0
    assert report.earned == 25 and "(+ up to 0 after manual review)" in report.to_markdown()
