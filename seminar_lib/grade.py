"""The grader's command line: ``python -m seminar_lib.grade`` (see :mod:`seminar_lib.grading.cli`)."""

from __future__ import annotations

import sys

from seminar_lib.grading.cli import main
from seminar_lib.grading.grader import HOMEWORK_DIR, grade_submission

__all__ = ["HOMEWORK_DIR", "grade_submission", "main"]

if __name__ == "__main__":
    sys.exit(main())
