"""The engine on the tiny assignment: full marks for the reference, zero with reasons for the template, per-case
timeouts with a fresh worker for the rest, replies that cannot be forged, the CLI and the Makefile."""

from __future__ import annotations

import json
import os
import subprocess
import time

from grading_kit import TINY, TINY_HOMEWORK, items

from seminar_lib.grading.cases import MAX_REASON
from seminar_lib.grading.cli import main
from seminar_lib.grading.grader import ROOT, grade_prepared, prepare
from seminar_lib.grading.report import Report
from seminar_lib.grading.sandbox import Sandbox

REFERENCE = TINY / "private" / "reference"
GOOD = (REFERENCE / "solution.py").read_text()


def test_the_reference_gets_full_marks_and_its_measured_value(tiny, untouched):
    report = grade_prepared(tiny, REFERENCE)
    assert report.status == "graded" and report.sandbox == tiny.sandbox.kind
    assert report.earned == report.total == 8 and report.pending == 1
    assert report.item("leaderboard").value == 0.75 and "(measured 0.7500)" in report.to_markdown()
    assert report.item("explanation").manual and len(report.sha256) == 64


def test_the_template_gets_zero_with_reasons(tiny):
    got = items(grade_prepared(tiny, TINY / "template"))
    assert all(earned == 0 for earned, _ in got.values() if _ != "to be reviewed by a grader")
    assert got["notebook_runs"][1] == "code cell 0 raised NotImplementedError: add"
    assert got["notebook_reproducible"][1].startswith("the notebook does not run")
    assert got["add"][1] == "public_add_scalars: raised NotImplementedError: add"
    assert got["mean"][1] == "mean_lazy: raised NotImplementedError: mean_of"


def test_unsandboxed_grading_agrees_with_the_sandboxed_one(tiny):
    unsafe = prepare("tiny", homework_dir=TINY_HOMEWORK, sandbox=Sandbox("none"))
    assert items(grade_prepared(unsafe, REFERENCE)) == items(grade_prepared(tiny, REFERENCE))


def test_a_case_that_ignores_sigalrm_and_loops_times_out_alone(tiny, make_submission):
    looping = GOOD.replace("def add(a, b):\n", "def add(a, b):\n    import signal\n"
                           "    signal.signal(signal.SIGALRM, signal.SIG_IGN)\n    while True:\n        pass\n")
    sub = make_submission(REFERENCE, {"solution.py": looping}, drop=("tiny.ipynb",))
    start = time.perf_counter()
    report = grade_prepared(tiny, sub)
    got = items(report)
    assert got["add"] == (0.0, "public_add_scalars: raised Timeout: the case did not finish within 4 s")
    assert got["mean"] == (3.0, "") and got["leaderboard"] == (2.0, "")  # a fresh worker answered the rest
    assert got["add"][0] == 0 and report.stages["cases"]["workers"] == 2  # add's second case is not run
    assert time.perf_counter() - start < 40


def test_a_worker_that_dies_in_a_case_costs_that_case_only(tiny, make_submission):
    dying = GOOD.replace("def mean_of(x):\n", "def mean_of(x):\n    import os\n    os._exit(0)\n")
    got = items(grade_prepared(tiny, make_submission(REFERENCE, {"solution.py": dying}, drop=("tiny.ipynb",))))
    assert got["mean"][0] == 0 and "ended (exit code 0) before answering" in got["mean"][1]
    assert got["add"] == (2.0, "") and got["leaderboard"] == (2.0, "")


FORGER = '''
import json, os, sys
reply = sys.argv[-1]
request = json.load(open(os.path.join(os.path.dirname(reply), "request", "request.json")))
for case in request["cases"]:
    with open(os.path.join(reply, f"{case['index']}.json"), "w") as f:
        json.dump({"outputs": json.dumps({"sum": 5, "mean": 0.5, "score": 1.0}), "error": None, "seconds": 0}, f)
    os.symlink("/dev/zero", os.path.join(reply, f"{case['index']}.npz"))
os._exit(0)
'''


def test_forged_replies_cannot_pass_a_hidden_case(tiny, make_submission, untouched):
    got = items(grade_prepared(tiny, make_submission(None, {"solution.py": FORGER})))
    assert got["add"][0] == got["mean"][0] == 0 and "malformed result" in got["mean"][1]
    assert got["leaderboard"][0] == 0


def test_exception_text_is_summarised_to_its_first_line(tiny, make_submission):
    leaky = GOOD.replace("def mean_of(x):\n", "def mean_of(x):\n    raise ValueError('first line ' + 'x' * 500"
                                              " + '\\nsecond line: ' + open(__file__).read())\n")
    report = grade_prepared(tiny, make_submission(REFERENCE, {"solution.py": leaky}, drop=("tiny.ipynb",)))
    reason = report.item("mean").reason
    assert "ValueError: first line xxx" in reason and len(reason) <= MAX_REASON
    assert "second line" not in report.to_json()


def test_forbidden_imports_cost_the_case_items(tiny, make_submission):
    delegating = "import statistics\n" + GOOD.replace("return float(np.sum(x) / len(x))",
                                                      "return statistics.fmean(x)")
    got = items(grade_prepared(tiny, make_submission(REFERENCE, {"solution.py": delegating}, drop=("tiny.ipynb",))))
    assert got["mean"][0] == got["add"][0] == 0
    assert "line 1: imports statistics" in got["mean"][1]
    sneaky = GOOD.replace("return float(np.sum(x) / len(x))",
                          "return __import__('importlib').import_module('statis' + 'tics').fmean(x)")
    got = items(grade_prepared(tiny, make_submission(REFERENCE, {"solution.py": sneaky}, drop=("tiny.ipynb",),
                                                     name="sneaky")))
    assert got["mean"][0] == 0 and "ForbiddenError: statistics is not available" in got["mean"][1]
    assert got["add"] == (2.0, "")


def test_cli_report_folder_and_a_missing_or_linked_submission(tmp_path, capsys):
    args = ["--assignment", "tiny", "--homework-dir", str(TINY_HOMEWORK)]
    assert main([str(TINY / "template"), *args, "--report", str(tmp_path / "r")]) == 0
    data = json.loads((tmp_path / "r" / "report.json").read_text())
    assert data["earned"] == 0 and data["total"] == 8 and (tmp_path / "r" / "report.md").is_file()
    assert Report.from_dict(data).item("add").reason.startswith("public_add_scalars")
    assert main([str(tmp_path / "absent"), *args]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "link").symlink_to(REFERENCE)
    assert main([str(tmp_path / "link"), *args, "--report", str(tmp_path / "l")]) == 0
    linked = json.loads((tmp_path / "l" / "report.json").read_text())
    assert linked["status"] == "rejected" and linked["earned"] == 0
    assert "is a symbolic link" in linked["items"][0]["reason"]


def test_make_grade_passes_paths_without_shell_expansion(tmp_path):
    sub = tmp_path / "x`touch INJECTED` ; touch INJECTED2 \"q'"  # ($ is make's own syntax, not the shell's)
    sub.mkdir()
    (sub / "solution.py").write_text(GOOD)
    env = {**os.environ, "MAKEFLAGS": ""}
    args = f"--homework-dir {TINY_HOMEWORK} --report {tmp_path / 'r'}"
    proc = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "grade", f"SUBMISSION={sub}", "ASSIGNMENT=tiny",
                           f"ARGS={args}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not list(tmp_path.glob("INJECTED*")) and not list(ROOT.glob("INJECTED*"))
    assert json.loads((tmp_path / "r" / "report.json").read_text())["submission"] == str(sub)
    missing = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), "grade",
                              f"SUBMISSION={tmp_path / 'nothing`touch INJECTED`'}", "ASSIGNMENT=tiny"],
                             env=env, capture_output=True, text=True, timeout=60)
    assert missing.returncode != 0 and "no submission at" in missing.stdout
    assert not list(ROOT.glob("INJECTED*"))



def test_a_solution_that_never_finishes_importing(tiny, make_submission, monkeypatch):
    from seminar_lib.grading import cases_stage

    monkeypatch.setattr(cases_stage, "IMPORT_TIMEOUT", 3)
    sub = make_submission(None, {"solution.py": "while True:\n    pass\n"})
    got = items(grade_prepared(tiny, sub))
    assert got["add"] == (0.0, "public_add_scalars: raised Timeout: importing solution.py took more than 4 s")
    assert got["mean"][0] == got["leaderboard"][0] == 0
