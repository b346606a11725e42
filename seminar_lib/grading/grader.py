"""Grade one submission: copy it, run the notebook and the cases in the sandbox, score in this process.

1. **copy** — the submission's plain files into a fresh scratch folder (links, devices, oversize: rejected);
2. **files** — the assignment's required files are there;
3. **notebook** — one sandboxed re-execution decides ``notebook_runs`` and ``notebook_reproducible``
   (:mod:`.notebook`);
4. **cases** — ``solution.py`` is checked for forbidden imports (:mod:`.forbidden`), then the public and
   hidden cases are answered by the sandboxed worker (:mod:`.cases_stage`); the reference solution answers
   the same cases here, once per process, and :func:`~.cases.check_case` decides each; an item earns its
   points iff every case naming it passes;
5. **manual** items are listed as pending.

Nothing the submission prints or writes decides a point: only the probes' plain-data results, checked
here. :func:`prepare` loads what is shared by every submission of an assignment (cases, reference results);
:func:`grade_submission` is the one-call API.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import types
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seminar_lib.errors import SeminarError
from seminar_lib.grading import cases as C
from seminar_lib.grading.assignment import Assignment, load_assignment
from seminar_lib.grading.cases_stage import run_cases_stage
from seminar_lib.grading.forbidden import find_forbidden
from seminar_lib.grading.notebook import run_notebook_stage
from seminar_lib.grading.report import Item, Report
from seminar_lib.grading.sandbox import Mounts, Sandbox, detect
from seminar_lib.grading.submission import SubmissionError, copy_submission, submission_sha256
from seminar_lib.notebook_outputs import SANITIZE_CONFIG
from seminar_lib.paths import HOMEWORK_DIR, PACKAGE_ROOT

ROOT = PACKAGE_ROOT
SANITIZE = SANITIZE_CONFIG


class GradingError(SeminarError, RuntimeError):
    """The grading itself cannot proceed (the assignment, its cases or its reference are broken)."""


@dataclass
class Grading:
    """Everything shared by the submissions of one assignment: its spec, sandbox, cases and the reference's
    results (computed once, in this process)."""

    assignment: Assignment
    sandbox: Sandbox
    private: Path
    cases: list[C.Case]
    mounts: Mounts
    data_dir: Path | None
    reference: dict[str, C.ProbeResult] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _loaded: tuple[types.ModuleType, types.ModuleType] | None = None

    def reference_result(self, case: C.Case) -> C.ProbeResult | None:
        """The reference solution's result for ``case`` (None for cases that need none)."""
        if not case.reference:
            return None
        with self._lock:
            if case.name not in self.reference:
                self.reference[case.name] = self._run_reference(case)
        return self.reference[case.name]

    def _modules(self) -> tuple[types.ModuleType, types.ModuleType]:
        """The harness and the reference solution, imported once (the caller holds the lock)."""
        if self._loaded is None:
            path = self.assignment.reference_solution(self.private)
            if not path.is_file():
                raise GradingError(f"the reference solution {path} is missing; pass --private with the instructors' folder")
            self._loaded = (C.load_module(self.assignment.harness, f"_harness_{self.assignment.name}"),
                            C.load_module(path, f"_reference_{self.assignment.name}"))
        return self._loaded

    def _run_reference(self, case: C.Case) -> C.ProbeResult:
        harness, solution = self._modules()
        result = C.run_probe(harness, solution, case.probe, case.resolved_inputs())
        if not result.ok:
            raise GradingError(f"the reference solution fails case {case.name!r}: {result.error}")
        return result


def _load_cases(assignment: Assignment, private: Path) -> list[C.Case]:
    cases: list[C.Case] = []
    for path in (assignment.public_cases, assignment.private_cases(private)):
        if path.is_file():
            cases += C.load_cases(path)
    if not cases and assignment.case_points:
        raise GradingError(f"no cases for {assignment.name}: neither {assignment.public_cases} nor "
                           f"{assignment.private_cases(private)} exists; pass --private with the instructors' folder")
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise GradingError(f"{assignment.name}: case names {duplicates} are both public and private")
    unknown = sorted({c.item for c in cases} - set(assignment.case_points))
    if unknown:
        raise GradingError(f"{assignment.name}: cases name item(s) {unknown} that [points.cases] lacks")
    return cases


def default_data_dir() -> Path:
    return Path(os.environ.get("SEMINAR_DATA_DIR") or Path.home() / ".cache" / "seminar_lib")


def prepare(assignment: str, *, homework_dir: Path | None = None, private: Path | None = None,
            unsafe: bool = False, sandbox: Sandbox | None = None, hidden: Sequence[Path] = (),
            data_dir: Path | None = None) -> Grading:
    """Load ``assignment`` and its cases, choose the sandbox (``unsafe``: none), and list what stages see.

    ``hidden``: more folders to hide in every stage (a class's submissions, the report folders)."""
    homework_dir = (homework_dir or HOMEWORK_DIR).resolve()
    spec = load_assignment(assignment, homework_dir)
    private = (private or spec.folder / "private").resolve()
    box = sandbox or (Sandbox("none") if unsafe else detect())
    visible = (ROOT, homework_dir)
    hide = (*sorted({*HOMEWORK_DIR.glob("*/private"), *homework_dir.glob("*/private")}), private, ROOT / "grades", ROOT / ".git", *hidden)
    return Grading(spec, box, private, _load_cases(spec, private), Mounts(visible, tuple(hide)),
                   data_dir or default_data_dir())


def _zero(report: Report, names: Sequence[str], points: dict[str, float], reason: str) -> None:
    for name in names:
        report.items.append(Item(name, points[name], 0.0, reason))


def grade_prepared(grading: Grading, submission: Path, *, scratch_parent: Path | None = None) -> Report:
    """Grade ``submission`` (a folder, or a single file) with a prepared :class:`Grading`."""
    start = time.perf_counter()
    spec = grading.assignment
    report = Report(spec.name, str(submission), max_points=spec.max_points, sandbox=grading.sandbox.kind)
    automatic = {**spec.points, **spec.case_points}
    with tempfile.TemporaryDirectory(prefix="grade-", dir=scratch_parent) as tmp:
        scratch = Path(tmp)
        work = scratch / "submission"
        try:
            report.sha256 = submission_sha256(submission)
            copy_submission(submission, work)
        except SubmissionError as exc:
            report.status = "rejected"
            report.stages["copy"] = {"ok": False, "reason": str(exc)}
            _zero(report, list(automatic), automatic, f"submission rejected: {exc}")
        else:
            report.stages["copy"] = {"ok": True, "reason": ""}
            _grade_copied(grading, work, scratch, report)
    for name, value in spec.manual.items():
        report.items.append(Item(name, value, 0.0, "to be reviewed by a grader", manual=True))
    report.seconds = time.perf_counter() - start
    return report


def _grade_copied(grading: Grading, work: Path, scratch: Path, report: Report) -> None:
    spec = grading.assignment
    missing = [f for f in spec.files if not (work / f).is_file()]
    report.stages["files"] = {"ok": not missing, "reason": f"missing file(s): {missing}" if missing else ""}
    if spec.points:
        assert spec.notebook is not None
        if spec.notebook in missing:
            _zero(report, list(spec.points), spec.points, f"missing file: {spec.notebook}")
        else:
            verdict = run_notebook_stage(grading.sandbox, scratch, work, spec, grading.mounts, grading.data_dir,
                                         SANITIZE)
            report.stages["notebook"] = {"ok": verdict.runs, "seconds": round(verdict.seconds, 2)}
            reasons = {"notebook_runs": (verdict.runs, verdict.runs_reason),
                       "notebook_reproducible": (verdict.reproducible, verdict.reproducible_reason)}
            for name, value in spec.points.items():
                ok, why = reasons[name]
                report.items.append(Item(name, value, value if ok else 0.0, why))
    if spec.case_points:
        _grade_cases(grading, work, scratch, report)


def _grade_cases(grading: Grading, work: Path, scratch: Path, report: Report) -> None:
    spec = grading.assignment
    points = spec.case_points
    solution = work / "solution.py"
    if not solution.is_file():
        _zero(report, list(points), points, "solution.py is missing")
        return
    findings = find_forbidden(solution.read_text(encoding="utf-8", errors="replace"), spec.forbidden)
    if findings:
        report.stages["forbidden"] = {"ok": False, "reason": "; ".join(findings)}
        _zero(report, list(points), points,
              f"solution.py uses what this assignment asks you to write: {findings[0]}"[:C.MAX_REASON])
        return
    stage = run_cases_stage(grading.sandbox, scratch, work, spec, grading.cases, grading.mounts)
    report.stages["cases"] = {"ok": True, "seconds": round(stage.seconds, 2), "workers": stage.workers}
    outcomes = [C.check_case(case, stage.results[case.name], grading.reference_result(case))
                for case in grading.cases]
    report.stages["cases"]["outcomes"] = [
        {"case": o.case, "item": o.item, "passed": o.passed, "reason": o.reason, "value": o.value}
        for o in outcomes]
    values = {}
    for o in outcomes:
        if o.value is not None:
            values.setdefault(o.item, o.value)
    for name, (earned, reason) in C.score_items(points, outcomes).items():
        report.items.append(Item(name, points[name], earned, reason, value=values.get(name)))


def grade_submission(submission: Path, assignment: str, *, homework_dir: Path | None = None,
                     private: Path | None = None, unsafe: bool = False) -> Report:
    """Grade one submission folder for ``assignment`` (sandboxed unless ``unsafe``); see the module docstring."""
    grading = prepare(assignment, homework_dir=homework_dir, private=private, unsafe=unsafe)
    return grade_prepared(grading, Path(submission))
