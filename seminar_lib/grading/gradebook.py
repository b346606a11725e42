"""A whole class: find the submissions, grade them in parallel, write the gradebook and the leaderboard.

``OUTPUT/<id>/report.json`` + ``report.md`` per submission, where ``<id>`` (:func:`submission_id`) is a
filesystem-safe slug of the submission's path inside the class folder plus a hash of that path, so two
``*/submission`` folders never share one. ``OUTPUT/gradebook.csv`` / ``.md`` / ``.json``: one row per
submission (student, points per item, earned, total, status, seconds, SHA-256 of its files), and, when an
item named ``leaderboard`` measured a value (hw2's held-out nDCG@10), ``leaderboard.csv`` / ``.md``.

Grading is resumable: a submission whose files hash to the SHA-256 in its existing report is not graded
again. One broken or hostile submission becomes a report with a reason (status ``rejected`` or
``error``); it never stops the others. Past one machine, ``shard=(i, n)`` grades every n-th submission
(a Slurm array task or a GNU parallel job) and :func:`merge` builds the gradebook from the report folders.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import time
import traceback
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from seminar_lib.files import atomic_write_text
from seminar_lib.grading.cases import MAX_REASON
from seminar_lib.grading.grader import Grading, grade_prepared
from seminar_lib.grading.report import Item, Report, read_report, write_report
from seminar_lib.grading.submission import SubmissionError, submission_sha256

LEADERBOARD_ITEM = "leaderboard"
MAX_DEPTH = 3


@dataclass(frozen=True)
class Submission:
    student: str  # the path inside the class folder, e.g. "alice/submission"
    path: Path
    id: str


def submission_id(relative: str) -> str:
    """``"alice/submission"`` → ``"alice-submission-<8 hex of its SHA-256>"`` (unique, filesystem-safe)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", relative).strip("-.")[:60] or "submission"
    return f"{slug}-{hashlib.sha256(relative.encode('utf-8', 'surrogateescape')).hexdigest()[:8]}"


def _holds_required(folder: Path, files: Sequence[str]) -> bool:
    return any(os.path.lexists(folder / f) for f in files)


def find_submissions(class_dir: Path, files: Sequence[str]) -> list[Submission]:
    """Every submission of ``class_dir``: each top-level entry is one student; inside a student's folder the
    submission is the folder (up to three levels down) that holds the assignment's files, else the student's
    folder itself. Links and special files are listed (and later rejected with a reason), never followed."""
    if not class_dir.is_dir():
        raise SubmissionError(f"the class folder {class_dir} does not exist or is not a folder")
    found: list[Submission] = []
    for entry in sorted(class_dir.iterdir()):
        if entry.name.startswith("."):
            continue
        mode = os.lstat(entry).st_mode
        candidates = [entry]
        if stat.S_ISDIR(mode) and not _holds_required(entry, files):
            inner = [Path(root) for root, dirs, _ in os.walk(entry) if _holds_required(Path(root), files)
                     and len(Path(root).relative_to(entry).parts) <= MAX_DEPTH]
            candidates = sorted(inner) or [entry]
        for path in candidates:
            relative = str(path.relative_to(class_dir))
            found.append(Submission(relative, path, submission_id(relative)))
    return found


def _error_report(grading: Grading, sub: Submission, exc: BaseException) -> Report:
    spec = grading.assignment
    report = Report(spec.name, str(sub.path), status="error", max_points=spec.max_points,
                    sandbox=grading.sandbox.kind)
    reason = f"the grader failed on this submission: {type(exc).__name__}: {str(exc)[:200]}"[:MAX_REASON]
    for name, value in {**spec.points, **spec.case_points}.items():
        report.items.append(Item(name, value, 0.0, reason))
    for name, value in spec.manual.items():
        report.items.append(Item(name, value, 0.0, "to be reviewed by a grader", manual=True))
    report.stages["error"] = {"ok": False, "reason": "".join(traceback.format_exception(exc)[-3:])[-2000:]}
    return report


def _current(folder: Path, sub: Submission) -> Report | None:
    """The existing report of ``sub`` if its files have not changed since."""
    if not (folder / "report.json").is_file():
        return None
    try:
        old = read_report(folder)
        sha = submission_sha256(sub.path)
    except (ValueError, OSError, SubmissionError):
        return None
    return old if old.sha256 == sha and old.status == "graded" else None


def grade_one(grading: Grading, sub: Submission, output: Path, *, regrade: bool = False) -> tuple[Report, bool]:
    """Grade ``sub`` into ``output/<id>`` (or reuse its current report); returns (report, graded now)."""
    folder = output / sub.id
    if not regrade and (old := _current(folder, sub)) is not None:
        return old, False
    try:
        report = grade_prepared(grading, sub.path)
    except Exception as exc:  # noqa: BLE001 - one submission must never stop the others
        report = _error_report(grading, sub, exc)
    report.student, report.id = sub.student, sub.id
    write_report(report, folder)
    return report, True


def warm_up(grading: Grading) -> None:
    """Build every case's inputs and the reference results once, before grading starts in parallel."""
    for case in grading.cases:
        case.resolved_inputs()
        grading.reference_result(case)


def grade_class(grading: Grading, class_dir: Path, output: Path, *, workers: int = 2, regrade: bool = False,
                shard: tuple[int, int] | None = None, log: bool = True) -> list[Report]:
    """Grade every submission of ``class_dir`` (or one shard of them) with ``workers`` parallel sandboxes;
    writes the per-submission reports, and without ``shard`` the gradebook and leaderboard."""
    subs = find_submissions(class_dir, grading.assignment.files)
    if shard is not None:
        index, count = shard
        subs = subs[index::count]
    warm_up(grading)
    start = time.perf_counter()

    def one(sub: Submission) -> Report:
        report, fresh = grade_one(grading, sub, output, regrade=regrade)
        if log:
            how = f"{report.seconds:.1f} s" if fresh else "unchanged, kept"
            print(f"{sub.student}: {report.earned:g} / {report.total:g} ({report.status}, {how})", flush=True)
        return report

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        reports = list(pool.map(one, subs))
    if shard is None:
        write_gradebook(reports, output)
    if log:
        print(f"{len(reports)} submissions in {time.perf_counter() - start:.1f} s with {workers} workers")
    return reports


# --------------------------------------------------------------------------------------------- gradebook


def gradebook_table(reports: Sequence[Report]) -> pl.DataFrame:
    """One row per report: id, student, points per item, earned, total, status, seconds, sha256."""
    names: list[str] = []
    for r in reports:
        names += [i.name for i in r.items if i.name not in names]
    rows = []
    for r in reports:
        earned = {i.name: (None if i.manual else i.earned) for i in r.items}
        rows.append({"id": r.id, "student": r.student or Path(r.submission).name,
                     **{n: earned.get(n) for n in names}, "earned": r.earned, "total": r.total,
                     "pending_manual_review": r.pending, "status": r.status, "seconds": round(r.seconds, 1),
                     "sha256": r.sha256})
    schema = {"id": pl.String, "student": pl.String, **{n: pl.Float64 for n in names}, "earned": pl.Float64,
              "total": pl.Float64, "pending_manual_review": pl.Float64, "status": pl.String,
              "seconds": pl.Float64, "sha256": pl.String}
    return pl.DataFrame(rows, schema=schema).sort("student")


def leaderboard_table(reports: Sequence[Report]) -> pl.DataFrame:
    """Students whose ``leaderboard`` item measured a value, best first."""
    rows = []
    for r in reports:
        for i in r.items:
            if i.name == LEADERBOARD_ITEM and i.value is not None:
                rows.append({"student": r.student or Path(r.submission).name, "id": r.id, "value": i.value,
                             "passed": i.earned > 0})
    schema = {"student": pl.String, "id": pl.String, "value": pl.Float64, "passed": pl.Boolean}
    table = pl.DataFrame(rows, schema=schema).sort(["value", "student"], descending=[True, False])
    return table.with_row_index("rank", offset=1)


def _markdown(table: pl.DataFrame) -> str:
    def cell(v: object) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(table.columns) + " |", "|" + " --- |" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.iter_rows()]
    return "\n".join(lines) + "\n"


def write_gradebook(reports: Sequence[Report], output: Path) -> None:
    """``gradebook.csv`` / ``.md`` / ``.json`` and, when values were measured, ``leaderboard.csv`` / ``.md``."""
    table = gradebook_table(reports)
    assignment = reports[0].assignment if reports else ""
    atomic_write_text(output / "gradebook.csv", table.write_csv())
    atomic_write_text(output / "gradebook.md", f"# Gradebook: {assignment}\n\n" + _markdown(table))
    atomic_write_text(output / "gradebook.json", json.dumps(table.to_dicts(), indent=1, ensure_ascii=False) + "\n")
    board = leaderboard_table(reports)
    if board.height:
        atomic_write_text(output / "leaderboard.csv", board.write_csv())
        atomic_write_text(output / "leaderboard.md", f"# Leaderboard: {assignment}\n\n" + _markdown(board))


def collect_reports(folders: Iterable[Path]) -> list[Report]:
    """Every ``report.json`` in ``folders`` (each a report folder, or a folder of report folders)."""
    reports, seen = [], set()
    for folder in folders:
        paths = [folder / "report.json"] if (folder / "report.json").is_file() else sorted(folder.glob("*/report.json"))
        for path in paths:
            report = read_report(path.parent)
            key = report.id or str(path.parent.resolve())
            if key in seen:
                raise ValueError(f"two reports for submission {key!r} (one in {path.parent}); merge each once")
            seen.add(key)
            reports.append(report)
    return reports


def merge(folders: Sequence[Path], output: Path, assignment: str | None = None) -> list[Report]:
    """The gradebook (and leaderboard) of reports made elsewhere (array jobs), written into ``output``."""
    reports = collect_reports(folders)
    if not reports:
        raise ValueError(f"no report.json found in {[str(f) for f in folders]}")
    kinds = {r.assignment for r in reports}
    if len(kinds) > 1 or (assignment is not None and kinds != {assignment}):
        raise ValueError(f"reports of assignments {sorted(kinds)} cannot share one gradebook")
    write_gradebook(reports, output)
    return reports
