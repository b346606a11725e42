"""Reports: points capped by max_points, manual items pending, JSON round trip; the student release leaves the
private folders out; --check runs the public cases."""

from __future__ import annotations

import io
import subprocess
import tarfile

import pytest
from grading_kit import HW1

from seminar_lib.grading.cli import main
from seminar_lib.grading.grader import ROOT
from seminar_lib.grading.report import Item, Report


def test_report_caps_points_and_lists_manual_items():
    report = Report("hw", "sub", items=[Item("a", 20, 20.0), Item("b", 10, 0.0), Item("c", 8, manual=True)],
                    max_points=25)
    assert report.total == 25 and report.earned == 20 and report.pending == 8
    text = report.to_markdown()
    assert "20 / 25 points (+ up to 5 after manual review)" in text and "| c | 8 | manual |" in text
    report.items[1].earned = 10.0
    assert report.earned == 25 and "(+ up to 0 after manual review)" in report.to_markdown()
    back = Report.from_dict(report.to_dict())
    assert back.items == report.items and back.earned == 25 and back.max_points == 25


def test_private_parts_are_excluded_from_the_student_release():
    """Students get `git archive` of this repository: .gitattributes marks homework/*/private export-ignore."""
    assert "homework/*/private export-ignore" in (ROOT / ".gitattributes").read_text()
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    names = tarfile.open(fileobj=io.BytesIO(archive)).getnames()
    assert any(n.startswith("homework/hw1_metrics_knn/template/") for n in names)
    assert not any(n.startswith("homework/") and ("/private/" in n or n.endswith("/private")) for n in names)


def test_check_runs_the_public_cases(capsys):
    assert main(["--check", str(HW1 / "template"), "--assignment", "hw1_metrics_knn"]) == 1
    assert "FAIL" in capsys.readouterr().out
    assert main(["--check", str(HW1 / "private" / "reference"), "--assignment", "hw1_metrics_knn"]) == 0
    with pytest.raises(SystemExit):  # argparse: --assignment is required
        main(["--check", str(HW1 / "template")])
