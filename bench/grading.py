"""Benchmark: what the sandbox costs per submission, and a class of ten homework-1 submissions with two workers.

For each submission (homework 1's reference with its notebook; the same solution without the notebook, i.e.
the cases stage alone; the tiny test assignment's reference) the grading is timed with every sandbox kind this
machine has (bubblewrap, the unshare fallback) and without one (``none``, what ``--unsafe`` does), in the same
run, interleaved, best of ``--repeats``; the ratio is sandboxed / unsandboxed. Then ``--class`` grades a class
of ten mixed homework-1 submissions (reference, template, the broken fixtures, hostile ones) with ``--workers``
and prints the wall time. Student code runs with the course's pinned CPU code paths and one BLAS thread here
(``OMP_NUM_THREADS=1`` is set for the grader; the stages get their own clean environment).

    python bench/grading.py [--repeats 2] [--workers 2] [--no-class]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEMINAR_DATA_DIR", str(ROOT.parent / "shared" / "data"))

from seminar_lib.grading.gradebook import grade_class  # noqa: E402
from seminar_lib.grading.grader import prepare, grade_prepared  # noqa: E402
from seminar_lib.grading.sandbox import Sandbox, bwrap_works, unshare_works  # noqa: E402

HW1 = ROOT / "homework" / "hw1_metrics_knn"
TINY_HOMEWORK = ROOT / "tests" / "grading" / "fixtures" / "homework"
BROKEN = ROOT / "tests" / "fixtures" / "submissions" / "hw1_metrics_knn"


def kinds() -> list[str]:
    return [k for k, ok in (("bwrap", bwrap_works()), ("unshare", unshare_works())) if ok] + ["none"]


def timed(grading, submission: Path) -> tuple[float, float]:
    start = time.perf_counter()
    report = grade_prepared(grading, submission)
    return time.perf_counter() - start, report.earned


def startup(repeats: int, scratch: Path) -> None:
    """The bare cost of a stage: ``python -c pass`` in each kind of sandbox, best of ``10 * repeats``."""
    from seminar_lib.grading.assignment import Limits
    from seminar_lib.grading.sandbox import Mounts, Stage

    best = {}
    for k in kinds():
        times = []
        for i in range(10 * repeats):
            stage = Stage((sys.executable, "-c", "pass"), scratch / f"start-{k}-{i}", Mounts((ROOT,)), Limits(), 60)
            start = time.perf_counter()
            assert Sandbox(k).run(stage).returncode == 0
            times.append(time.perf_counter() - start)
        best[k] = min(times)
    print("one stage, `python -c pass`: " + ", ".join(f"{k} {best[k] * 1000:.0f} ms" for k in best)
          + " (" + ", ".join(f"{k} +{(best[k] - best['none']) * 1000:.0f} ms" for k in best if k != "none") + ")")


def overhead(repeats: int, scratch: Path) -> None:
    cases_only = scratch / "hw1-cases-only"
    cases_only.mkdir()
    shutil.copy(HW1 / "private" / "reference" / "solution.py", cases_only)
    subjects = [("hw1 reference (notebook + cases)", "hw1_metrics_knn", None, HW1 / "private" / "reference"),
                ("hw1 reference (cases only)", "hw1_metrics_knn", None, cases_only),
                ("tiny reference (notebook + cases)", "tiny", TINY_HOMEWORK, TINY_HOMEWORK / "tiny" / "private" / "reference")]
    print(f"{'submission':36} " + " ".join(f"{k:>9}" for k in kinds()) + "   ratio(s) vs none")
    for title, name, homework_dir, path in subjects:
        gradings = {k: prepare(name, homework_dir=homework_dir, sandbox=Sandbox(k)) for k in kinds()}
        for g in gradings.values():  # reference results and lazy inputs once, outside the timing
            for case in g.cases:
                g.reference_result(case)
        best = {k: float("inf") for k in gradings}
        points = {}
        order = list(gradings)
        for r in range(repeats):
            for k in order[r % len(order):] + order[:r % len(order)]:  # rotated, so no kind always runs first
                seconds, points[k] = timed(gradings[k], path)
                best[k] = min(best[k], seconds)
        assert len(set(points.values())) == 1, f"the kinds disagree on {title}: {points}"
        ratios = " ".join(f"{k} {best[k] / best['none']:.2f}x" for k in best if k != "none")
        print(f"{title:36} " + " ".join(f"{best[k]:8.1f}s" for k in best) + f"   {ratios}")


def klass(workers: int, scratch: Path) -> None:
    root = scratch / "class"
    shutil.copytree(HW1 / "private" / "reference", root / "ref")
    shutil.copytree(HW1 / "template", root / "tmpl")
    for name in ("syntax_error", "missing_file", "wrong_signature"):
        shutil.copytree(BROKEN / name, root / name)
    reference = (HW1 / "private" / "reference" / "solution.py").read_text()
    template = (HW1 / "template" / "solution.py").read_text()
    for folder, text in {"alice/submission": reference, "bob/submission": template,
                         "forger": "import os\nos._exit(0)\n", "reader": "exec(open('/etc/shadow').read())\n"}.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "solution.py").write_text(text)
    (root / "linked").symlink_to(HW1 / "private" / "reference")
    grading = prepare("hw1_metrics_knn")
    start = time.perf_counter()
    reports = grade_class(grading, root, scratch / "grades", workers=workers, log=False)
    wall = time.perf_counter() - start
    print(f"class of {len(reports)} hw1 submissions, {workers} workers ({grading.sandbox.kind}): {wall:.1f} s wall, "
          f"{sum(r.seconds for r in reports):.1f} s summed over submissions")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-class", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        scratch = Path(tmp)
        startup(args.repeats, scratch)
        overhead(args.repeats, scratch)
        if not args.no_class:
            klass(args.workers, scratch)


if __name__ == "__main__":
    main()
