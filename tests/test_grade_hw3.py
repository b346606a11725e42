"""Homework 3 through the grader: full marks for the reference, zero with reasons for the template."""

from __future__ import annotations

import pytest

from seminar_lib.grade import HOMEWORK_DIR, grade

HW3 = HOMEWORK_DIR / "hw3_sasrec"


@pytest.mark.slow
def test_reference_solution_gets_full_marks():
    report = grade(HW3 / "private" / "reference", "hw3_sasrec")
    assert report.earned == report.total == 20, report.to_markdown()
    assert report.seconds < 120


@pytest.mark.slow
def test_the_untouched_template_scores_zero_with_reasons():
    report = grade(HW3 / "template", "hw3_sasrec")
    got = {i.name: (i.earned, i.reason) for i in report.items}
    assert all(earned == 0 for earned, _ in got.values()), report.to_markdown()
    assert "NotImplementedError" in got["test_gbce_loss"][1]
    assert "NotImplementedError" in got["test_quality_on_held_out"][1]
    assert "NotImplementedError" in got["notebook_runs"][1]


def test_point_scheme_matches_the_hidden_tests():
    import ast
    import tomllib

    spec = tomllib.loads((HW3 / "assignment.toml").read_text())
    tree = ast.parse((HW3 / "private" / "tests" / "test_hw3.py").read_text())
    tests = {node.name for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}
    assert set(spec["points"]["tests"]) == tests
    assert sum(spec["points"]["tests"].values()) + spec["points"]["notebook_runs"] \
        + spec["points"]["notebook_reproducible"] == 20
