"""Judging notebooks: executed top to bottom, outputs equal to the re-execution's under the course sanitizer
(nbval's comparison), widget outputs ignored, malformed files a reason."""

from __future__ import annotations

import json

import nbformat
import pytest

from seminar_lib.grading.grader import SANITIZE
from seminar_lib.grading.notebook import (NotebookError, execution_order_problem, first_error, outputs_problem,
                                          read_notebook, sanitize_patterns)

PATTERNS = sanitize_patterns(SANITIZE)


def notebook(*cells: tuple[str, int | None, list]) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    for i, (source, count, outputs) in enumerate(cells):
        cell = nbformat.v4.new_code_cell(source, execution_count=count, outputs=[nbformat.from_dict(o) for o in outputs])
        cell["id"] = f"c{i}"
        nb.cells.append(cell)
    return nb


def stream(text: str) -> dict:
    return {"output_type": "stream", "name": "stdout", "text": text}


def result(text: str, count: int) -> dict:
    return {"output_type": "execute_result", "execution_count": count, "metadata": {}, "data": {"text/plain": text}}


WIDGET = {"output_type": "display_data", "metadata": {},
          "data": {"application/vnd.jupyter.widget-view+json": {"model_id": "abc", "version_major": 2,
                                                                "version_minor": 0},
                   "text/plain": "train: 0%|          | 0/4 [00:00<?, ?it/s]"}}


def test_execution_order():
    assert execution_order_problem(notebook(("a = 1", 1, []), ("", None, []), ("b = 2", 2, []))) is None
    assert "never executed" in execution_order_problem(notebook(("x = 1", None, [])))
    assert "code cell 1 was never executed" in execution_order_problem(notebook(("a", 1, []), ("b", None, [])))
    assert "out of order" in execution_order_problem(notebook(("a", 2, []), ("b", 1, [])))
    assert "out of order" in execution_order_problem(notebook(("a", 3, []), ("b", 3, [])))


def test_outputs_are_compared_with_nbval_under_the_sanitizer():
    saved = notebook(("print(t)", 1, [stream("took 1.52 s at 2026-01-01 10:00:00\n")]), ("x", 2, [result("3", 2)]))
    rerun = notebook(("print(t)", 1, [stream("took 0.97 s at 2026-12-02 07:00:01\n")]), ("x", 2, [result("3", 2)]))
    assert outputs_problem(saved, rerun, PATTERNS) is None
    changed = notebook(("print(t)", 1, [stream("took 0.97 s at 2026-12-02 07:00:01\n")]), ("x", 2, [result("4", 2)]))
    assert "code cell 1" in outputs_problem(saved, changed, PATTERNS)
    missing = notebook(("print(t)", 1, []), ("x", 2, [result("3", 2)]))
    assert "code cell 0" in outputs_problem(saved, missing, PATTERNS)
    split = notebook(("print(t)", 1, [stream("took 1.52 s "), stream("at 2026-01-01 10:00:00\n")]),
                     ("x", 2, [result("3", 2)]))
    assert outputs_problem(split, rerun, PATTERNS) is None  # streams are coalesced, as nbval does


def test_a_saved_progress_bar_widget_costs_nothing():
    saved = notebook(("fit()", 1, [WIDGET, stream("done\n")]))
    rerun = notebook(("fit()", 1, [stream("done\n")]))
    assert outputs_problem(saved, rerun, PATTERNS) is None
    assert outputs_problem(notebook(("fit()", 1, [stream("other\n")])), rerun, PATTERNS) is not None


def test_skip_markers_are_honoured():
    saved = notebook(("# NBVAL_IGNORE_OUTPUT\nprint(random())", 1, [stream("0.1\n")]))
    assert outputs_problem(saved, notebook(("print(random())", 1, [stream("0.7\n")])), PATTERNS) is None


def test_first_error():
    nb = notebook(("a", 1, []), ("b", 2, [{"output_type": "error", "ename": "ValueError", "evalue": "bad k\nmore",
                                           "traceback": []}]))
    assert first_error(nb) == "code cell 1 raised ValueError: bad k"


@pytest.mark.parametrize("content, reason", [
    (b"{not json", "is not a notebook"),
    (json.dumps({"cells": "nope", "nbformat": 4, "nbformat_minor": 5, "metadata": {}}).encode(), "not a valid notebook"),
    (b"\xff\xfe\x00", "not UTF-8"),
])
def test_malformed_notebooks_are_a_reason(tmp_path, content, reason):
    path = tmp_path / "n.ipynb"
    path.write_bytes(content)
    with pytest.raises(NotebookError, match=reason):
        read_notebook(path)


def test_oversized_and_linked_notebooks_are_a_reason(tmp_path):
    big = tmp_path / "big.ipynb"
    big.write_bytes(b" " * (2 << 20))
    with pytest.raises(NotebookError, match="larger than"):
        read_notebook(big, max_mb=1)
    (tmp_path / "zero.ipynb").symlink_to("/dev/zero")
    with pytest.raises(NotebookError):
        read_notebook(tmp_path / "zero.ipynb")
