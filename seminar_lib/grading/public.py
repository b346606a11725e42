"""Public checks: a student runs an assignment's visible cases against their own ``solution.py``.

    from seminar_lib.grading.public import check
    check("hw1_metrics_knn")            # in the notebook, whose folder holds solution.py

runs ``homework/<assignment>/public_cases.py`` through the assignment's ``harness.py`` **in this process,
unsandboxed** (it is the student's own code on their own machine), prints one line per case — passed or
the reason it failed — and returns the :class:`~seminar_lib.grading.cases.LocalRun`. It prints no timings,
so a notebook that calls it reproduces its outputs exactly. The hidden cases the grader runs are other
cases on other inputs (and the grader runs them in a sandbox); passing every public case is necessary,
not sufficient.
"""

from __future__ import annotations

import types
from pathlib import Path

from seminar_lib.grading.cases import LocalRun, load_cases, load_module, run_cases_in_process
from seminar_lib.paths import HOMEWORK_DIR



def assignment_dir(assignment: str, homework_dir: str | Path | None = None) -> Path:
    """``homework/<assignment>`` of this repository (or of ``homework_dir``); a clear error if it is not there."""
    root = Path(homework_dir) if homework_dir is not None else HOMEWORK_DIR
    folder = root / assignment
    if not (folder / "assignment.toml").is_file():
        known = sorted(p.parent.name for p in root.glob("*/assignment.toml"))
        raise FileNotFoundError(f"no assignment {assignment!r} in {root} (known: {', '.join(known) or 'none'})")
    return folder


def assignment_module(assignment: str, filename: str, homework_dir: str | Path | None = None) -> types.ModuleType:
    """Import ``homework/<assignment>/<filename>`` (e.g. ``harness.py``, ``public_cases.py``) as a module."""
    path = assignment_dir(assignment, homework_dir) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    return load_module(path, f"_{assignment}_{Path(filename).stem}")


def format_run(run: LocalRun) -> str:
    """One line per case (``PASS`` / ``FAIL`` with the reason), then the count; no timings."""
    width = max((len(o.case) for o in run.outcomes), default=4)
    lines = [f"{'PASS' if o.passed else 'FAIL'}  {o.case:<{width}}  {o.reason}".rstrip() for o in run.outcomes]
    passed = sum(o.passed for o in run.outcomes)
    lines.append(f"{passed} of {len(run.outcomes)} public cases pass"
                 + ("" if passed == len(run.outcomes) else " — fix the failing ones before you submit"))
    return "\n".join(lines)


def check(assignment: str, folder: str | Path = ".", *, homework_dir: str | Path | None = None,
          quiet: bool = False) -> LocalRun:
    """Run the public cases of ``assignment`` against ``folder/solution.py``; print the table unless ``quiet``."""
    solution_path = Path(folder) / "solution.py"
    if not solution_path.is_file():
        raise FileNotFoundError(f"{solution_path} does not exist: run check() in the folder that holds your solution.py, "
                                "or pass folder=")
    harness = assignment_module(assignment, "harness.py", homework_dir)
    cases = load_cases(assignment_dir(assignment, homework_dir) / "public_cases.py")
    solution = load_module(solution_path, f"_{assignment}_checked_solution")
    run = run_cases_in_process(harness, solution, cases)
    if not quiet:
        print(format_run(run))
    return run
