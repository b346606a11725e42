"""Fixtures of the grading-engine tests: the tiny assignment, a fast copy of homework 1, submissions made
from the reference with some files replaced, and a fingerprint of everything a submission must not change."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from grading_kit import HW1, TINY_HOMEWORK, fast_limits, fingerprint, sandbox_kinds

from seminar_lib.grading.grader import Grading, prepare
from seminar_lib.grading.sandbox import Sandbox



@pytest.fixture(scope="session")
def sandbox() -> Sandbox:
    kinds = sandbox_kinds()
    if not kinds:
        pytest.fail("no sandbox works here: install bubblewrap (the grader refuses to grade without one)")
    return Sandbox(kinds[0])


@pytest.fixture
def untouched():
    """Asserts, after the test, that nothing outside the stages' own folders changed."""
    before = fingerprint()
    yield
    after = fingerprint()
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a grading changed files outside its stage: {changed[:10]}"


@pytest.fixture(scope="session")
def tiny(sandbox) -> Grading:
    return prepare("tiny", homework_dir=TINY_HOMEWORK, sandbox=sandbox)


@pytest.fixture(scope="session")
def hw1_fast(tmp_path_factory, sandbox) -> Grading:
    """Homework 1 as it is, with short time limits (so a looping submission costs seconds, not minutes)."""
    folder = tmp_path_factory.mktemp("homework") / "hw1_metrics_knn"
    shutil.copytree(HW1, folder)
    folder.parent.chmod(0o755)  # pytest makes its folders 0700; the stage's uid must read the assignment
    toml = folder / "assignment.toml"
    toml.write_text(fast_limits(toml.read_text(), case_timeout=8, cell_timeout=60, notebook_timeout=150))
    grading = prepare("hw1_metrics_knn", homework_dir=folder.parent, sandbox=sandbox)
    for case in grading.cases:  # the reference's results, once for every test of the session
        grading.reference_result(case)
    return grading


@pytest.fixture
def make_submission(tmp_path) -> Callable[..., Path]:
    """``make_submission(base, {"solution.py": text, ...}, drop=[...])``: a copy of ``base`` with files
    replaced or added (text or bytes) and others removed."""

    def make(base: Path | None, files: dict[str, str | bytes] | None = None, drop: tuple[str, ...] = (),
             name: str = "submission") -> Path:
        folder = tmp_path / name
        if base is not None:
            shutil.copytree(base, folder)
        folder.mkdir(parents=True, exist_ok=True)
        for rel, content in (files or {}).items():
            target = folder / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content if isinstance(content, bytes) else content.encode())
        for rel in drop:
            (folder / rel).unlink()
        return folder

    return make

# the fixture assignment's solutions and notebooks are graded, not collected
collect_ignore_glob = ["fixtures/*"]
