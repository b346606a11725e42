"""``python -m seminar_lib.grade``: one submission, a whole class, a merge of reports, or public checks.

    python -m seminar_lib.grade SUBMISSION --assignment NAME [--report DIR] [--private DIR] [--unsafe]
    python -m seminar_lib.grade --class DIR --assignment NAME [--workers N] [--output DIR] [--shard I/N]
    python -m seminar_lib.grade merge REPORT_DIR [REPORT_DIR ...] --output DIR
    python -m seminar_lib.grade --check FOLDER --assignment NAME

Exit codes: 0 graded (whatever the score), 1 public checks failed, 2 bad usage or input (the message says
what to fix), 3 no sandbox on this machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from seminar_lib.errors import SeminarError
from seminar_lib.grading.sandbox import SandboxUnavailableError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m seminar_lib.grade",
                                description="Grade homework submissions in a sandbox (see homework/README.md).")
    p.add_argument("submission", nargs="?", type=Path, help="a submitted folder (or a single file)")
    p.add_argument("--assignment", required=True, help="e.g. hw1_metrics_knn")
    p.add_argument("--class", dest="class_dir", type=Path, help="grade every submission in this folder")
    p.add_argument("--check", type=Path, metavar="FOLDER", help="run the public checks on FOLDER/solution.py")
    p.add_argument("--workers", type=int, default=2, help="parallel gradings with --class (default 2)")
    p.add_argument("--output", type=Path, help="with --class: the gradebook folder (default grades/<assignment>)")
    p.add_argument("--shard", help="with --class: I/N grades every N-th submission from the I-th (0-based); "
                                   "no gradebook: build it with `merge`")
    p.add_argument("--regrade", action="store_true", help="with --class: grade unchanged submissions again")
    p.add_argument("--report", type=Path, help="where report.json / report.md go "
                                               "(default grades/<assignment>/<submission id>)")
    p.add_argument("--private", type=Path, help="the instructors' folder (default homework/<name>/private)")
    p.add_argument("--homework-dir", type=Path, help="the folder of assignments (default homework/)")
    p.add_argument("--unsafe", action="store_true",
                   help="no sandbox: only for a student checking their own work on their own machine")
    return p


def _merge_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m seminar_lib.grade merge",
                                description="Build the gradebook and leaderboard from report folders made elsewhere.")
    p.add_argument("folders", nargs="+", type=Path, help="report folders, or folders of report folders")
    p.add_argument("--output", type=Path, required=True, help="where gradebook.* / leaderboard.* go")
    p.add_argument("--assignment", help="refuse reports of any other assignment")
    return p


def _shard(text: str | None) -> tuple[int, int] | None:
    if text is None:
        return None
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise SeminarError(f"--shard {text!r}: write it as I/N, e.g. 0/8") from None
    if not 0 <= index < count:
        raise SeminarError(f"--shard {text!r}: need 0 <= I < N")
    return index, count


def run(argv: list[str]) -> int:
    from seminar_lib.grading import gradebook, grader
    from seminar_lib.grading.report import write_report

    if argv[:1] == ["merge"]:
        args = _merge_parser().parse_args(argv[1:])
        reports = gradebook.merge(args.folders, args.output, args.assignment)
        print(f"gradebook of {len(reports)} submissions: {args.output / 'gradebook.md'}")
        return 0
    parser = _parser()
    args = parser.parse_args(argv)
    modes = [x is not None for x in (args.submission, args.class_dir, args.check)]
    if sum(modes) != 1:
        parser.error("give exactly one of SUBMISSION, --class DIR or --check FOLDER")
    if args.check is not None:
        from seminar_lib.grading.public import check

        return 0 if not check(args.assignment, args.check).failures() else 1
    output_default = grader.ROOT / "grades" / args.assignment
    if args.class_dir is not None:
        output = (args.output or output_default).resolve()
        grading = grader.prepare(args.assignment, homework_dir=args.homework_dir, private=args.private,
                                 unsafe=args.unsafe, hidden=(args.class_dir.resolve(), output))
        gradebook.grade_class(grading, args.class_dir, output, workers=args.workers, regrade=args.regrade,
                              shard=_shard(args.shard))
        print(f"gradebook: {output / 'gradebook.md'}")
        return 0
    submission = args.submission
    if not submission.exists() and not submission.is_symlink():
        raise SeminarError(f"the submission {submission} does not exist; pass the folder a student submitted")
    folder = (args.report or output_default / gradebook.submission_id(str(submission.absolute()))).resolve()
    grading = grader.prepare(args.assignment, homework_dir=args.homework_dir, private=args.private,
                             unsafe=args.unsafe, hidden=(folder,))
    report = grader.grade_prepared(grading, submission)
    write_report(report, folder)
    print(report.to_markdown())
    print(f"report: {folder / 'report.json'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    try:
        return run(sys.argv[1:] if argv is None else list(argv))
    except SandboxUnavailableError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    except (SeminarError, ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
