"""The notebook stage: the grader re-executes the submitted notebook in the sandbox and compares.

* ``notebook_runs``: papermill, inside the sandbox with the dataset folder read-only, runs the notebook
  top to bottom (``cell_timeout`` per cell, ``notebook_timeout`` in all) without an error.
* ``notebook_reproducible``: besides, every non-empty code cell of the *submitted* notebook has an
  execution count and the counts increase from cell to cell (it was run top to bottom, nothing left
  unexecuted), and its outputs equal the re-execution's under the course sanitizer
  (``seminar_lib/nbval_sanitize.cfg``), compared here with nbval's own comparison and sanitizing code. Widget
  outputs (a JupyterLab progress bar and its text fallback) are dropped from both sides first
  (:mod:`seminar_lib.notebook_outputs`); cells marked ``NBVAL_SKIP`` / ``NBVAL_IGNORE_OUTPUT`` are not compared.

The notebook is executed once; both notebooks are read strictly (size limit, nbformat validation), so a
malformed one is a reason, not a crash.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import nbformat

from seminar_lib import cpu_kernels
from seminar_lib.grading.assignment import Assignment
from seminar_lib.grading.cases import MAX_REASON
from seminar_lib.grading.sandbox import Mounts, Sandbox, Stage
from seminar_lib.grading.submission import SubmissionError, read_plain_file
from seminar_lib.notebook_outputs import strip_widget_outputs

MAX_NOTEBOOK_MB = 64
PAPERMILL = ("import sys, papermill as pm\n"
             "pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name='python3', cwd=sys.argv[3],"
             " progress_bar=False, execution_timeout=int(sys.argv[4]), start_timeout=120)\n")


class NotebookError(ValueError):
    """A notebook file that cannot be graded (the message says why)."""


@dataclass(frozen=True)
class NotebookVerdict:
    runs: bool
    runs_reason: str
    reproducible: bool
    reproducible_reason: str
    seconds: float


def read_notebook(path: Path, max_mb: int = MAX_NOTEBOOK_MB) -> nbformat.NotebookNode:
    """The notebook at ``path``, read as nbformat 4 and validated; :class:`NotebookError` otherwise."""
    try:
        data = read_plain_file(path, max_mb << 20)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. nbformat's MissingIDFieldWarning on older notebooks
            nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            nbformat.validate(nb)
    except SubmissionError as exc:
        raise NotebookError(str(exc)) from None
    except UnicodeDecodeError:
        raise NotebookError(f"{path.name} is not UTF-8 text") from None
    except nbformat.ValidationError as exc:
        raise NotebookError(f"{path.name} is not a valid notebook: {str(exc).splitlines()[0][:200]}") from None
    except Exception as exc:  # noqa: BLE001 - nbformat raises several kinds on bad JSON
        raise NotebookError(f"{path.name} is not a notebook: {type(exc).__name__}: "
                            f"{(str(exc).splitlines() or [''])[0][:200]}") from None
    return nb


def _code_cells(nb: nbformat.NotebookNode) -> list[nbformat.NotebookNode]:
    return [c for c in nb.cells if c.cell_type == "code"]


def execution_order_problem(nb: nbformat.NotebookNode) -> str | None:
    """Why the saved notebook was not run top to bottom, or None: every non-empty code cell needs an
    execution count, larger than the previous cell's."""
    previous = 0
    for number, cell in enumerate(_code_cells(nb)):
        if not cell.source.strip():
            continue
        count = cell.get("execution_count")
        if count is None:
            return f"code cell {number} was never executed; run the notebook top to bottom and save it"
        if count <= previous:
            return (f"code cell {number} ran out of order (execution count {count} after {previous}); "
                    "restart the kernel, run all cells and save")
        previous = count
    return None


def sanitize_patterns(config: Path) -> OrderedDict[str, str]:
    """The (regex → replacement) pairs of an nbval sanitizer file, read with nbval's own parser."""
    from nbval.plugin import get_sanitize_patterns

    return OrderedDict(get_sanitize_patterns(config.read_text(encoding="utf-8")))


class _Comparer:
    """Just what nbval's ``IPyNbCell.compare_outputs`` / ``sanitize`` read from a cell, without pytest."""

    def __init__(self, patterns: OrderedDict[str, str]) -> None:
        from nbval.plugin import IPyNbCell, nocolors

        skip = ("metadata", "traceback", "prompt_number", "output_type", "name", "execution_count",
                "application/vnd.jupyter.widget-view+json", "image/png", "image/jpeg")  # nbval's defaults
        self.parent = SimpleNamespace(skip_compare=skip, sanitize_patterns=patterns)
        self.colors = nocolors
        self.comparison_traceback: list[str] = []
        self._compare = IPyNbCell.compare_outputs
        self._sanitize = IPyNbCell.sanitize

    def sanitize(self, s: Any) -> Any:
        return self._sanitize(self, s)

    def format_output_compare(self, key: str, left: Any, right: Any) -> None:
        self.comparison_traceback.append(f"'{key}' differs")

    def equal(self, test: list[Any], ref: list[Any]) -> tuple[bool, str]:
        self.comparison_traceback = []
        ok = self._compare(self, test, ref)
        text = " ".join(re.sub(r"\s+", " ", t) for t in self.comparison_traceback if t.strip())
        return ok, text


def _skip_cell(cell: nbformat.NotebookNode) -> bool:
    from nbval.plugin import find_comment_markers, find_metadata_tags

    options = dict(find_metadata_tags(cell.metadata)) | dict(find_comment_markers(cell.source))
    return bool(options.get("skip") or options.get("check") is False)


def outputs_problem(submitted: nbformat.NotebookNode, executed: nbformat.NotebookNode,
                    patterns: OrderedDict[str, str]) -> str | None:
    """Why the submitted outputs are not the re-execution's (first differing cell), or None."""
    from nbval.plugin import coalesce_streams

    mine, theirs = _code_cells(submitted), _code_cells(executed)
    if len(mine) != len(theirs):
        return f"the re-executed notebook has {len(theirs)} code cells, the submitted one {len(mine)}"
    comparer = _Comparer(patterns)
    for number, (a, b) in enumerate(zip(mine, theirs)):
        if _skip_cell(a):
            continue
        ref = coalesce_streams([nbformat.from_dict(o) for o in strip_widget_outputs(a.outputs)])
        test = coalesce_streams([nbformat.from_dict(o) for o in strip_widget_outputs(b.outputs)])
        ok, why = comparer.equal(test, ref)
        if not ok:
            return f"code cell {number}: its saved outputs differ from the re-execution's ({why})"[:MAX_REASON]
    return None


def first_error(nb: nbformat.NotebookNode) -> str | None:
    """``"cell 3: ValueError: message"`` for the first code cell with an error output, or None."""
    for number, cell in enumerate(_code_cells(nb)):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                value = (str(out.get("evalue", "")).strip().splitlines() or [""])[0]
                what = f"{out.get('ename', 'an error')}: {value}" if value else str(out.get("ename", "an error"))
                return f"code cell {number} raised {what}"[:MAX_REASON]
    return None


def run_notebook_stage(sandbox: Sandbox, scratch: Path, submission: Path, assignment: Assignment,
                       mounts: Mounts, data_dir: Path | None, sanitize: Path) -> NotebookVerdict:
    """Execute ``submission/<notebook>`` once in the sandbox and judge both notebook items."""
    assert assignment.notebook is not None
    name = assignment.notebook
    try:
        submitted = read_notebook(submission / name)
    except NotebookError as exc:
        return NotebookVerdict(False, str(exc), False, str(exc), 0.0)
    folder = scratch / "notebook"
    shutil.copytree(submission, folder / "work", symlinks=True)
    (folder / "out").mkdir()
    _seed_matplotlib_cache(folder / "home")
    limits = assignment.limits
    env = cpu_kernels.pin({})
    read_only = list(mounts.read_only)
    if data_dir is not None and data_dir.is_dir():
        env["SEMINAR_DATA_DIR"] = str(data_dir.resolve())
        read_only.append(data_dir.resolve())
    stage = Stage((sys.executable, "-I", "-c", PAPERMILL, sandbox.inside(folder, folder / "work" / name),
                   sandbox.inside(folder, folder / "out" / "executed.ipynb"), sandbox.inside(folder, folder / "work"),
                   str(int(limits.cell_timeout))),
                  folder, Mounts(tuple(read_only), mounts.hidden), limits, limits.notebook_timeout, env)
    run = sandbox.run(stage)
    executed_path = folder / "out" / "executed.ipynb"
    executed = None
    try:
        executed = read_notebook(executed_path)
    except NotebookError:
        pass
    if run.timed_out:
        runs_reason = f"the notebook did not finish within {limits.notebook_timeout:g} s"
    elif run.returncode and ("CellTimeoutError" in run.output or "timed out while it was being executed" in run.output):
        runs_reason = f"a cell did not finish within {limits.cell_timeout:g} s"  # nbclient interrupted it
    elif executed is not None and (err := first_error(executed)):
        runs_reason = err
    elif run.returncode != 0:
        runs_reason = f"the notebook did not run (exit code {run.returncode}): {_last_error_line(run.output)}"
    elif executed is None:
        runs_reason = "the re-executed notebook could not be read"
    else:
        runs_reason = ""
    runs = not runs_reason
    if not runs:
        return NotebookVerdict(False, runs_reason, False, f"the notebook does not run: {runs_reason}"[:MAX_REASON],
                               run.seconds)
    assert executed is not None
    why = execution_order_problem(submitted) or outputs_problem(submitted, executed, sanitize_patterns(sanitize))
    return NotebookVerdict(True, "", why is None, why or "", run.seconds)


def _last_error_line(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if "Error" in line or "Timeout" in line]
    return ((errors or lines or ["no output"])[-1])[:200]


def _seed_matplotlib_cache(home: Path) -> None:
    """Copy the grader's matplotlib font cache into the stage's home, so that matplotlib does not print
    "building the font cache" into the re-executed notebook."""
    source = Path(os.environ.get("MPLCONFIGDIR") or Path.home() / ".cache" / "matplotlib")
    target = home / ".cache" / "matplotlib"
    target.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        for f in source.glob("fontlist-*.json"):
            target.joinpath(f.name).write_bytes(f.read_bytes())
