"""assignment.toml: what the grader reads, and the errors that say what to fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from seminar_lib.grading.assignment import AssignmentError, Limits, load_assignment, parse_assignment
from seminar_lib.grading.grader import HOMEWORK_DIR

GOOD = """
name = "hw"
files = ["solution.py", "hw.ipynb"]
notebook = "hw.ipynb"
max_points = 5
forbidden = ["seminar_lib.metrics"]
[limits]
case_timeout = 3
[points]
notebook_runs = 1
[points.cases]
a = 2
b = 4
[manual]
essay = 1
"""


def test_a_good_file_is_read_with_defaults_for_missing_limits():
    spec = parse_assignment(GOOD, Path("/x/hw"))
    assert spec.points == {"notebook_runs": 1.0} and spec.case_points == {"a": 2.0, "b": 4.0}
    assert spec.manual == {"essay": 1.0} and spec.max_points == 5.0 and spec.forbidden == ("seminar_lib.metrics",)
    assert spec.limits.case_timeout == 3 and spec.limits.memory_mb == Limits().memory_mb
    assert spec.harness == Path("/x/hw/harness.py")


@pytest.mark.parametrize("edit, message", [
    (("name = \"hw\"", "name = \"other\""), "differs from its folder"),
    (("case_timeout = 3", "case_timeout = -3"), "positive number"),
    (("case_timeout = 3", "case_tmeout = 3"), "unknown [limits] key"),
    (("a = 2", "a = \"two\""), "non-negative number"),
    (("notebook_runs = 1", "tests_pass = 1"), "move ['tests_pass'] into [points.cases]"),
    (("essay = 1", "a = 1"), "both automatic and manual"),
    (("notebook = \"hw.ipynb\"", "notebook = \"other.ipynb\""), "must be one of files"),
    (("\"solution.py\"", "\"../solution.py\""), "plain file name"),
    (("max_points = 5", "max_points = ["), "not valid TOML"),
])
def test_malformed_files_say_what_is_wrong(edit, message):
    with pytest.raises(AssignmentError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_assignment(GOOD.replace(*edit), Path("/x/hw"))


def test_an_unknown_assignment_lists_the_known_ones():
    with pytest.raises(AssignmentError, match="known: .*hw1_metrics_knn"):
        load_assignment("hw0", HOMEWORK_DIR)
    with pytest.raises(AssignmentError, match="not an assignment name"):
        load_assignment("../etc", HOMEWORK_DIR)
