"""Grading homework.

:mod:`.cases` (cases, probes, checks on plain data), :mod:`.assignment` (``assignment.toml``),
:mod:`.submission` (plain-file copies, hashes), :mod:`.sandbox` (bubblewrap / unshare + prlimit),
:mod:`.worker` (the sandboxed process that calls the student's code), :mod:`.cases_stage` and
:mod:`.notebook` (the two stages), :mod:`.forbidden` (what a solution must not use), :mod:`.grader`
(one submission), :mod:`.gradebook` (a class), :mod:`.report`, :mod:`.cli` (``python -m seminar_lib.grade``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seminar_lib.grading.grader import grade_submission
    from seminar_lib.grading.report import Item, Report

__all__ = ["Item", "Report", "grade_submission"]


def __getattr__(name: str) -> Any:  # lazy, so that the sandboxed worker imports only what it needs
    if name == "grade_submission":
        from seminar_lib.grading.grader import grade_submission

        return grade_submission
    if name in ("Item", "Report"):
        from seminar_lib.grading import report

        return getattr(report, name)
    raise AttributeError(f"module 'seminar_lib.grading' has no attribute {name!r}")
