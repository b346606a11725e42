"""Hidden tests of homework 3: the student's module comes from $SEMINAR_SUBMISSION (set by the grader)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def solution():
    folder = Path(os.environ.get("SEMINAR_SUBMISSION", "."))
    path = folder / "solution.py"
    if not path.is_file():
        pytest.fail(f"solution.py is missing from the submission ({folder})")
    spec = importlib.util.spec_from_file_location("student_solution", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(folder))
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:  # noqa: BLE001 - any failure of student code is a reason, not a crash
        pytest.fail(f"solution.py cannot be imported: {type(exc).__name__}: {exc}")
    return module


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    import torch

    torch.set_num_threads(1)  # the quality test compares two trainings: keep them bit-for-bit comparable
