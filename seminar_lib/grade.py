"""Grade a homework submission: re-execute, check reproducibility, run the hidden tests, score.

    python -m seminar_lib.grade SUBMISSION --assignment hw1_metrics_ease [--private DIR] [--report DIR]

``SUBMISSION`` is a folder (or a single notebook) with the files the assignment names. Stages, each
in its own process with a time limit, on a temporary copy of the submission:

1. **files** — the required files exist;
2. **execute** — the notebook runs top to bottom with papermill (per-cell and total timeouts);
3. **reproducible** — nbval re-executes it and compares the outputs with the submitted ones;
4. **tests** — the assignment's hidden tests (read from ``--private``, never from the submission)
   run against the submitted code with pytest (per-test timeout, ``--junitxml``).

Every item of the assignment's point scheme (``homework/<name>/assignment.toml``) gets its points or
zero with the reason. The report (``report.json`` + ``report.md``) is written by the grader after all
student code has finished, into a folder outside the submission. A broken submission (syntax
error, exception, infinite loop, missing file, wrong signature) never crashes the grader.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seminar_lib import cpu_kernels
from seminar_lib.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK_DIR = ROOT / "homework"
SANITIZE = ROOT / "tests" / "nbval_sanitize.cfg"


@dataclass
class Item:
    """One line of the point scheme and its outcome (``manual``: left to a human reviewer)."""

    name: str
    points: float
    earned: float = 0.0
    reason: str = ""
    manual: bool = False


@dataclass
class Report:
    """Points per item; ``max_points`` caps the total (an open assignment offers more than it counts)."""

    assignment: str
    submission: str
    items: list[Item] = field(default_factory=list)
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    seconds: float = 0.0
    max_points: float | None = None

    @property
    def total(self) -> float:
        full = sum(i.points for i in self.items)
        return min(full, self.max_points) if self.max_points is not None else full

    @property
    def earned(self) -> float:
        got = sum(i.earned for i in self.items)
        return min(got, self.total)

    @property
    def pending(self) -> float:
        """Points of the items left to manual review."""
        return sum(i.points for i in self.items if i.manual)

    def to_json(self) -> str:
        data = asdict(self)
        data |= {"earned": self.earned, "total": self.total, "pending_manual_review": self.pending}
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def to_markdown(self) -> str:
        room = min(self.pending, self.total - self.earned)  # manual points can add at most up to the cap
        pending = f" (+ up to {room:g} after manual review)" if self.pending else ""
        lines = [f"# {self.assignment}: {self.earned:g} / {self.total:g} points{pending}", "",
                 f"submission: `{self.submission}` · graded in {self.seconds:.0f} s", "",
                 "| item | points | earned | reason |", "| --- | --- | --- | --- |"]
        for i in self.items:
            reason = i.reason.replace("|", "\\|").replace("\n", " ")[:300] or "ok"
            earned = "manual" if i.manual else f"{i.earned:g}"
            lines.append(f"| {i.name} | {i.points:g} | {earned} | {reason} |")
        return "\n".join(lines) + "\n"


def load_assignment(name: str, homework_dir: Path = HOMEWORK_DIR) -> dict[str, Any]:
    path = homework_dir / name / "assignment.toml"
    if not path.is_file():
        known = sorted(p.parent.name for p in homework_dir.glob("*/assignment.toml"))
        raise SystemExit(f"unknown assignment {name!r}; known: {known}")
    spec = tomllib.loads(path.read_text())
    spec["dir"] = path.parent
    return spec


def _run(cmd: list[str], cwd: Path, timeout: float, env: dict[str, str]) -> tuple[int | None, str]:
    """Run ``cmd``; returns (exit code or None on timeout, combined output tail)."""
    try:
        proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode(errors="replace") if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        return None, out[-3000:]
    return proc.returncode, (proc.stdout + proc.stderr)[-6000:]


def _base_env(work: Path) -> dict[str, str]:
    env = dict(os.environ)
    env |= {"TQDM_DISABLE": "1", "SEMINAR_SUBMISSION": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SEMINAR_RUN_DIR", None)
    cpu_kernels.pin(env)  # the code paths the committed outputs were made with (a student's explicit setting wins)
    return env


def stage_execute(notebook: Path, work: Path, cell_timeout: int, total_timeout: int) -> dict[str, Any]:
    """Papermill in a separate process; the executed copy stays in the work folder."""
    out = work / f".executed-{notebook.name}"
    code = ("import sys, papermill as pm\n"
            "pm.execute_notebook(sys.argv[1], sys.argv[2], kernel_name='python3', cwd=sys.argv[3], progress_bar=False,"
            " execution_timeout=int(sys.argv[4]))\n")
    rc, output = _run([sys.executable, "-c", code, str(notebook), str(out), str(work), str(cell_timeout)], work,
                      total_timeout, _base_env(work))
    if rc is None:
        return {"ok": False, "reason": f"the notebook did not finish within {total_timeout} s"}
    if rc != 0:
        return {"ok": False, "reason": _papermill_reason(output)}
    return {"ok": True, "reason": ""}


def _papermill_reason(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    for i, line in enumerate(lines):
        if line.startswith("Exception encountered at"):
            error = next((l for l in lines[i + 1:] if "Error" in l and ":" in l and not l.startswith(" ")), "")
            return f"{line.strip()} {error.strip()}"[:400]
    tail = [l for l in lines if "Error" in l or "Timeout" in l or "timed out" in l.lower()]
    return (tail[-1] if tail else (lines[-1] if lines else "the notebook failed"))[:400]


def stage_nbval(notebook: Path, work: Path, cell_timeout: int, total_timeout: int) -> dict[str, Any]:
    """nbval in a separate process: the submitted outputs must be what re-execution produces."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:python", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(SANITIZE), "--nbval-cell-timeout", str(cell_timeout), "-p", "no:cacheprovider",
           "-o", "addopts=", "-o", "testpaths=", "-q", "--color=no", "--rootdir", str(work), str(notebook)]
    rc, output = _run(cmd, work, total_timeout, _base_env(work))
    if rc is None:
        return {"ok": False, "reason": f"nbval did not finish within {total_timeout} s"}
    if rc != 0:
        failed = [l for l in output.splitlines() if l.startswith("FAILED")]
        return {"ok": False, "reason": "outputs are not reproducible: " + ("; ".join(failed[:3]) or output[-300:])}
    return {"ok": True, "reason": ""}


def stage_tests(tests_dir: Path, work: Path, test_timeout: int, total_timeout: int) -> dict[str, Any]:
    """The hidden tests with pytest, results read from JUnit XML: ``{test name: (passed, reason)}``."""
    junit = work.parent / "junit.xml"
    copy = work.parent / "hidden_tests"
    shutil.copytree(tests_dir, copy)
    cmd = [sys.executable, "-m", "pytest", str(copy), "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           "-o", "testpaths=", "--rootdir", str(copy), f"--junitxml={junit}", f"--timeout={test_timeout}",
           "-p", "no:randomly", "--color=no"]
    rc, output = _run(cmd, work.parent, total_timeout, _base_env(work))
    if rc is None:
        return {"ok": False, "reason": f"the tests did not finish within {total_timeout} s", "cases": {}}
    if not junit.is_file():
        return {"ok": False, "reason": f"pytest did not run: {output[-300:]}", "cases": {}}
    cases = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        problem = next(iter(case), None)
        if problem is None or problem.tag in ("system-out", "system-err"):
            cases[case.get("name")] = (True, "")
        else:
            message = (problem.get("message") or problem.text or problem.tag).strip().splitlines()
            cases[case.get("name")] = (False, f"{problem.tag}: {message[0] if message else ''}"[:300])
    return {"ok": rc == 0, "reason": "", "cases": cases}


def grade(submission: Path, assignment: str, *, private: Path | None = None, homework_dir: Path = HOMEWORK_DIR,
          cell_timeout: int | None = None, total_timeout: int | None = None, test_timeout: int | None = None) -> Report:
    """Grade ``submission`` (a folder or a notebook) for ``assignment``; see the module docstring."""
    start = time.perf_counter()
    spec = load_assignment(assignment, homework_dir)
    limits = spec.get("limits", {})
    cell_timeout = cell_timeout or limits.get("cell_timeout", 300)
    total_timeout = total_timeout or limits.get("total_timeout", 900)
    test_timeout = test_timeout or limits.get("test_timeout", 60)
    private = private or spec["dir"] / "private"
    tests_dir = private / "tests"
    report = Report(assignment, str(submission))
    points = spec["points"]
    with tempfile.TemporaryDirectory(prefix="grade-") as tmp:
        work = Path(tmp) / "submission"
        if submission.is_dir():
            shutil.copytree(submission, work, ignore=shutil.ignore_patterns(".*", "__pycache__"))
        elif submission.is_file():
            work.mkdir()
            shutil.copy(submission, work / submission.name)
        else:
            work.mkdir()
        missing = [f for f in spec["files"] if not (work / f).is_file()]
        report.stages["files"] = {"ok": not missing, "reason": f"missing file(s): {missing}" if missing else ""}

        notebook = work / spec["notebook"]
        notebook_items = {"notebook_runs": "execute", "notebook_reproducible": "reproducible"}
        for item, stage in notebook_items.items():
            if item not in points:
                continue
            if not notebook.is_file():
                report.stages[stage] = {"ok": False, "reason": f"missing file: {spec['notebook']}"}
            elif stage == "execute":
                report.stages[stage] = stage_execute(notebook, work, cell_timeout, total_timeout)
            else:
                report.stages[stage] = stage_nbval(notebook, work, cell_timeout, total_timeout)
            st = report.stages[stage]
            report.items.append(Item(item, points[item], points[item] if st["ok"] else 0.0, st["reason"]))

        if not tests_dir.is_dir():
            raise SystemExit(f"hidden tests not found in {tests_dir}; pass --private with the instructors' folder")
        tests = stage_tests(tests_dir, work, test_timeout, total_timeout)
        report.stages["tests"] = {k: v for k, v in tests.items() if k != "cases"}
        for name, value in points.get("tests", {}).items():
            cases = {c: r for c, r in tests["cases"].items() if c == name or c.startswith(name + "[")}
            if not cases:
                reason = tests["reason"] or (f"missing file(s): {missing}" if missing else "test did not run")
                report.items.append(Item(name, value, 0.0, reason))
                continue
            failures = [r for ok, r in cases.values() if not ok]
            report.items.append(Item(name, value, 0.0 if failures else value, failures[0] if failures else ""))
    for name, value in spec.get("manual", {}).items():
        report.items.append(Item(name, value, 0.0, "to be reviewed by a grader", manual=True))
    report.max_points = spec.get("max_points")
    report.seconds = time.perf_counter() - start
    return report


def write_report(report: Report, folder: Path) -> None:
    atomic_write_text(folder / "report.json", report.to_json())
    atomic_write_text(folder / "report.md", report.to_markdown())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.grade", description=__doc__.splitlines()[0])
    parser.add_argument("submission", type=Path, help="the submitted folder (or notebook)")
    parser.add_argument("--assignment", required=True, help="e.g. hw1_metrics_ease")
    parser.add_argument("--private", type=Path, help="folder with the hidden tests (default homework/<name>/private)")
    parser.add_argument("--report", type=Path, help="where report.json / report.md go (default: grades/<name>/<submission>)")
    parser.add_argument("--cell-timeout", type=int)
    parser.add_argument("--total-timeout", type=int)
    parser.add_argument("--test-timeout", type=int)
    args = parser.parse_args(argv)
    report = grade(args.submission.resolve(), args.assignment, private=args.private, cell_timeout=args.cell_timeout,
                   total_timeout=args.total_timeout, test_timeout=args.test_timeout)
    folder = args.report or ROOT / "grades" / args.assignment / args.submission.resolve().name
    write_report(report, folder)
    print(report.to_markdown())
    print(f"report: {folder / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
