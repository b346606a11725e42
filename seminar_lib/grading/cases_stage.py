"""The cases stage: the submission's probes in the sandboxed worker, the reference's here, checks here.

The grader writes the cases (inputs as plain data) into a request, starts the worker
(:mod:`seminar_lib.grading.worker`) in the sandbox, and watches its reply folder. Each case has its own
time limit, enforced from here: when the case being answered passes it (a function that ignores
``SIGALRM`` and loops), or the worker dies in the middle of a case, the sandbox is killed, that case is
marked, and a fresh worker (fresh stage folder, fresh copy of the submission) answers the remaining
cases (after a timeout, those of other items: the timed-out case's item is lost anyway). Replies are read as untrusted plain data: size-limited, links refused, JSON + ``.npz`` without
pickle. No dataset is mounted: whatever a probe needs comes in its inputs.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from seminar_lib.grading import cases as C
from seminar_lib.grading.assignment import Assignment
from seminar_lib.grading.sandbox import Mounts, RunningStage, Sandbox, Stage
from seminar_lib.grading.submission import SubmissionError, read_plain_file

MAX_REPLY_JSON = 8 << 20
MAX_REPLY_NPZ = 256 << 20
POLL = 0.02
IMPORT_TIMEOUT = 60  # s for the worker's imports (torch, the solution) before its first case; at least case_timeout


@dataclass(frozen=True)
class CasesStageResult:
    """Per case name, what the submission's probe gave; plus the number of workers started."""

    results: dict[str, C.ProbeResult]
    workers: int
    seconds: float


def _read_reply(reply: Path, index: int) -> C.ProbeResult:
    try:
        meta = json.loads(read_plain_file(reply / f"{index}.json", MAX_REPLY_JSON))
        if not isinstance(meta, dict):
            raise ValueError("the reply is not a JSON object")
        seconds = float(meta.get("seconds") or 0.0)
        if meta.get("error") is not None:
            return C.ProbeResult(error=str(meta["error"])[:C.MAX_REASON], seconds=seconds)
        arrays = C.load_npz(read_plain_file(reply / f"{index}.npz", MAX_REPLY_NPZ))
        outputs = C.decode(str(meta["outputs"]), arrays)
        if not isinstance(outputs, dict):
            raise ValueError("the outputs are not a dict")
        return C.ProbeResult(outputs=outputs, seconds=seconds)
    except (SubmissionError, ValueError, KeyError, TypeError, OSError, EOFError) as exc:
        return C.ProbeResult(error=f"malformed result ({C.summarize_exception(exc)})")


def _write_request(folder: Path, sandbox: Sandbox, stage_folder: Path, assignment: Assignment,
                   cases: Sequence[tuple[int, C.Case]]) -> None:
    folder.mkdir(parents=True)
    entries = []
    for index, case in cases:
        text, arrays = C.encode(case.resolved_inputs())
        if arrays:
            (folder / f"{index}.npz").write_bytes(C.save_npz(arrays))
        entries.append({"index": index, "name": case.name, "probe": case.probe, "inputs": text})
    request = {"harness": str(assignment.harness),
               "solution": sandbox.inside(stage_folder, stage_folder / "work" / "solution.py"),
               "forbidden": list(assignment.forbidden), "cases": entries}
    (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")


def run_cases_stage(sandbox: Sandbox, scratch: Path, submission: Path, assignment: Assignment,
                    cases: Sequence[C.Case], mounts: Mounts) -> CasesStageResult:
    """Answer ``cases`` with the submission (a folder of plain files, copied into each worker's stage)."""
    limits = assignment.limits
    start = time.perf_counter()
    results: dict[str, C.ProbeResult] = {}
    pending = list(enumerate(cases))
    workers = 0
    while pending:
        left = limits.cases_timeout - (time.perf_counter() - start)
        if left <= 0:
            for _, case in pending:
                results[case.name] = C.ProbeResult(error=f"Timeout: the cases stage ran out of its "
                                                         f"{limits.cases_timeout:g} s")
            break
        workers += 1
        folder = scratch / f"cases-{workers}"
        shutil.copytree(submission, folder / "work", symlinks=True)
        _write_request(folder / "request", sandbox, folder, assignment, pending)
        reply = folder / "reply"
        reply.mkdir()
        # -I: the submission's folder is not on sys.path when the worker starts (a numpy.py or seminar_lib/
        # of the submission cannot replace what the worker imports); the worker adds it for solution.py only
        argv = (sys.executable, "-I", "-m", "seminar_lib.grading.worker",
                sandbox.inside(folder, folder / "request"), sandbox.inside(folder, reply))
        stage = Stage(argv, folder, mounts, limits, left)
        running = sandbox.start(stage)
        answered, overdue, ready = _watch(running, reply, pending, left, limits.case_timeout)
        run = running.finish(running.poll())
        if (reply / "import.json").exists():
            try:
                why = json.loads(read_plain_file(reply / "import.json", MAX_REPLY_JSON))["error"]
            except (SubmissionError, ValueError, KeyError, TypeError):
                why = "an unreadable reply"
            for _, case in pending:
                results[case.name] = C.ProbeResult(error=f"solution.py cannot be imported: {str(why)[:C.MAX_REASON]}")
            break
        if overdue and not ready:
            why = f"Timeout: importing solution.py took more than {min(left, max(IMPORT_TIMEOUT, limits.case_timeout)):g} s"
            for _, case in pending:
                results[case.name] = C.ProbeResult(error=why)
            break
        for index, case in pending[:answered]:
            results[case.name] = _read_reply(reply, index)
        if answered == len(pending):
            break
        index, case = pending[answered]
        limit = case.timeout or limits.case_timeout
        rest = pending[answered + 1:]
        if run.timed_out or overdue:
            results[case.name] = C.ProbeResult(error=f"Timeout: the case did not finish within {limit:g} s",
                                               seconds=float(limit))
            # the item is lost already: its other cases would only cost their time limits too
            for _, other in (p for p in rest if p[1].item == case.item):
                results[other.name] = C.ProbeResult(error=f"not run: case {case.name!r} of this item timed out")
            rest = [p for p in rest if p[1].item != case.item]
        else:
            results[case.name] = C.ProbeResult(error=_death(run.returncode))
        pending = rest
        shutil.rmtree(folder, ignore_errors=True)
    return CasesStageResult(results, workers, time.perf_counter() - start)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        return f"the worker process was killed by signal {-code} while answering this case (memory or process limit?)"
    return f"the worker process ended (exit code {code}) before answering this case"


def _watch(running: RunningStage, reply: Path, pending: Sequence[tuple[int, C.Case]], budget: float,
           default: float) -> tuple[int, bool, bool]:
    """Poll the reply folder until the worker exits, the stage budget ends, or the imports or the case being
    answered pass their limit (then the stage is killed). Returns (leading cases answered, killed for time,
    imports finished)."""
    answered = 0
    import_limit = min(budget, max(IMPORT_TIMEOUT, default))
    since = time.perf_counter()  # when the case now being answered (or the imports) began, as seen from here
    ready = False
    while True:
        while answered < len(pending) and (reply / f"{pending[answered][0]}.json").exists():
            answered += 1
            since = time.perf_counter()
        if not ready and ((reply / "ready").exists() or (reply / "import.json").exists()):
            ready = True
            since = time.perf_counter()
        if answered == len(pending) or running.poll() is not None:
            if running.poll() is not None:  # count replies written just before the exit
                while answered < len(pending) and (reply / f"{pending[answered][0]}.json").exists():
                    answered += 1
            return answered, False, ready
        case = pending[answered][1]
        limit = (case.timeout or default) if ready else import_limit
        now = time.perf_counter()
        if now - since > limit or running.elapsed() > budget:
            running.kill()
            return answered, True, ready
        time.sleep(POLL)
