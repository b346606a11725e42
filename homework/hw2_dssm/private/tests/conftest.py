"""Hidden tests of homework 2: the student's module comes from $SEMINAR_SUBMISSION (set by the grader).

Torch runs on one CPU thread (as in the course's smoke profile): the results do not depend on the
machine's core count, and a shared grading machine is not oversubscribed.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
import torch

os.environ.setdefault("TQDM_DISABLE", "1")
torch.set_num_threads(1)


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


@pytest.fixture(scope="session")
def synthetic():
    from seminar_lib.datasets import load

    return load("synthetic", n_users=400, n_items=200, seed=0)


@pytest.fixture(scope="session")
def synthetic_train(synthetic):
    from seminar_lib.splits import global_time_split

    return global_time_split(synthetic.interactions).train


@pytest.fixture(scope="session")
def ml100k():
    from seminar_lib.datasets import load

    return load("ml-100k")
