"""Hostile and broken submissions to homework 1, graded in the sandbox: each gets the score an honest grading
gives (zero, the template's, or the reference's for the parts it did right), with a reason, and nothing outside
the stage's own folders changes (``untouched`` fingerprints the project, private/, grades/ and the venv).

Submissions without a notebook run the cases stage only (a few seconds each); the notebook attacks use
one-cell notebooks. The issue's table, row by row, with at least one variant each.
"""

from __future__ import annotations

import dataclasses
import json
import socket
import textwrap
from pathlib import Path

import nbformat
import pytest
from grading_kit import BROKEN, HW1, MARKER, REFERENCE, TEMPLATE, items, leftover, with_prelude

from seminar_lib.grading.grader import grade_prepared

CASE_ITEMS = ("graded_ndcg", "intra_list_diversity", "mean_auc", "itemknn_similarity", "itemknn_recommend",
              "scale", "input_validation")
CASE_POINTS = 19.0


def case_items(report) -> dict[str, float]:
    return {i.name: i.earned for i in report.items if i.name in CASE_ITEMS}


def case_total(report) -> float:
    return sum(case_items(report).values())


def one_cell_notebook(source: str, execution_count: int | None = None, outputs: list | None = None) -> str:
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell(textwrap.dedent(source), execution_count=execution_count,
                                     outputs=[nbformat.from_dict(o) for o in outputs or []])
    cell["id"] = "only"
    nb.cells.append(cell)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nbformat.writes(nb)


# ------------------------------------------------------------------ row 1: delegation to what is installed

def test_delegating_to_the_library_does_not_pass(hw1_fast, make_submission, untouched):
    """The library's nDCG is binary with RecTools' ideal: not the graded nDCG the homework asks for."""
    delegating = TEMPLATE.replace('''    # TODO
    raise NotImplementedError


def intra_list_diversity''', '''    from seminar_lib.metrics import ndcg
    return ndcg(recos, test, k)


def intra_list_diversity''', 1)
    got = items(grade_prepared(hw1_fast, make_submission(None, {"solution.py": delegating})))
    assert got["graded_ndcg"][0] == 0 and "differ" in got["graded_ndcg"][1]


def test_a_forbidden_import_costs_every_case_item(hw1_fast, make_submission, untouched):
    delegating = REFERENCE.replace("from scipy.stats import rankdata",
                                   "from scipy.stats import rankdata\nfrom sklearn.metrics import roc_auc_score")
    report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": delegating}))
    assert case_total(report) == 0
    assert "imports sklearn.metrics (forbidden: sklearn.metrics)" in report.item("mean_auc").reason


def test_a_forbidden_module_reached_at_run_time_is_a_stub(hw1_fast, make_submission):
    """The AST check cannot see a name built at run time; the worker's stub refuses it."""
    sneaky = REFERENCE.replace('''def mean_auc(''', '''def _auc_helper():
    import importlib
    return importlib.import_module("sklearn." + "metrics").roc_auc_score


def mean_auc(''').replace('''    """Mean over users of the ROC-AUC''', '''    _auc_helper()
    """Mean over users of the ROC-AUC''', 1)
    assert "_auc_helper()" in sneaky
    got = items(grade_prepared(hw1_fast, make_submission(None, {"solution.py": sneaky})))
    assert got["mean_auc"][0] == 0 and "ForbiddenError: sklearn.metrics is not available" in got["mean_auc"][1]
    assert got["graded_ndcg"][0] == 3 and got["itemknn_similarity"][0] == 4


# ------------------------------------------------------------------ row 2: notebooks that were never run

@pytest.mark.parametrize("notebook, reason", [
    (one_cell_notebook("x = 1"), "code cell 0 was never executed"),  # the row
    (nbformat.writes(nbformat.from_dict({  # a variant: run, but out of order
        "nbformat": 4, "nbformat_minor": 5, "metadata": {},
        "cells": [{"cell_type": "code", "id": "a", "source": "x = 1", "metadata": {}, "execution_count": 2,
                   "outputs": []},
                  {"cell_type": "code", "id": "b", "source": "y = 2", "metadata": {}, "execution_count": 1,
                   "outputs": []}]})), "ran out of order"),
    (one_cell_notebook("print(6 * 7)", 1, [{"output_type": "stream", "name": "stdout", "text": "41\n"}]),
     "saved outputs differ"),  # a variant: edited outputs
])
def test_a_notebook_earns_reproducible_only_if_run_top_to_bottom(hw1_fast, make_submission, notebook, reason):
    sub = make_submission(None, {"solution.py": TEMPLATE, "hw1_metrics_knn.ipynb": notebook})
    got = items(grade_prepared(hw1_fast, sub))
    assert got["notebook_runs"] == (2.0, "")  # the grader's own run of it succeeds
    assert got["notebook_reproducible"][0] == 0 and reason in got["notebook_reproducible"][1]


# ------------------------------------------------------------------ rows 3 and 6: a notebook that writes

WRITER = f"""
import os, subprocess, sys, sysconfig, pathlib, seminar_lib
root = pathlib.Path(seminar_lib.__file__).resolve().parents[1]
targets = [root / "homework" / "hw1_metrics_knn" / "private" / "cases.py",
           root / "homework" / "hw1_metrics_knn" / "harness.py",
           root / "seminar_lib" / "grade.py",
           root / "seminar_lib" / "grading" / "grader.py",
           pathlib.Path(sysconfig.get_paths()["purelib"]) / "zz_evil.pth",
           root / "grades" / "hw1_metrics_knn" / "victim" / "report.json",
           root / "Makefile"]
failed = 0
for t in targets:
    try:
        t.parent.mkdir(parents=True, exist_ok=True)
        t.write_text("import os; os.system('touch /tmp/pwned')\\n")
    except OSError:
        failed += 1
daemon = ("import pathlib, sys, time\\n"
          "for _ in range(100):\\n"
          "    time.sleep(0.1)\\n"
          "    for p in sys.argv[2:]:\\n"
          "        try: pathlib.Path(p).write_text('rewritten after the grading')\\n"
          "        except OSError: pass\\n")
subprocess.Popen([sys.executable, "-c", daemon, "{MARKER}", *map(str, targets)], start_new_session=True)
print(failed, "of", len(targets), "writes refused")
"""


def test_a_notebook_cannot_change_the_project_private_grades_or_venv(hw1_fast, make_submission, untouched):
    sub = make_submission(None, {"solution.py": TEMPLATE, "hw1_metrics_knn.ipynb": one_cell_notebook(WRITER)})
    report = grade_prepared(hw1_fast, sub)
    assert report.item("notebook_runs").earned == 2  # it ran; every write went nowhere
    assert leftover() == []
    assert not Path("/tmp/pwned").exists()


# ------------------------------------------------------------------ row 4: reading the reference solution

READERS = {
    "by repository path": f"exec(open({str(HW1 / 'private' / 'reference' / 'solution.py')!r}).read())",
    "through the grader's command line": """
import os, re
for pid in filter(str.isdigit, os.listdir("/proc")):
    for name in ("cmdline", "environ"):
        try:
            text = open(f"/proc/{pid}/{name}", "rb").read().decode(errors="replace")
        except OSError:
            continue
        for path in re.findall(r"(/[^\\0 ]*private[^\\0 ]*)", text):
            exec(open(os.path.join(path, "reference", "solution.py")).read())
raise ImportError("no --private on any visible command line")
""",
    "by searching the disk": """
import os
for top in ("/work", "/tmp", "/root", "/home", "/srv", "/opt"):
    for folder, dirs, files in os.walk(top):
        if "solution.py" in files and not folder.startswith("/sandbox"):
            text = open(os.path.join(folder, "solution.py"), errors="replace").read()
            if "def itemknn_similarity" in text and "NotImplementedError" not in text:
                exec(text)
                break
raise ImportError("no reference solution anywhere in sight")
""",
    "through the git history": """
import subprocess, seminar_lib, pathlib
root = pathlib.Path(seminar_lib.__file__).resolve().parents[1]
out = subprocess.run(["git", "-C", str(root), "show", "HEAD:homework/hw1_metrics_knn/private/reference/solution.py"],
                     capture_output=True, text=True)
exec(out.stdout)
if not out.stdout:
    raise ImportError("git shows nothing")
""",
}


@pytest.mark.parametrize("how", READERS)
def test_the_reference_solution_cannot_be_read(hw1_fast, make_submission, untouched, how):
    report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": READERS[how]}))
    assert case_total(report) == 0
    assert "cannot be imported" in report.item("graded_ndcg").reason


def test_a_symlink_to_the_reference_is_rejected(hw1_fast, tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "solution.py").symlink_to(HW1 / "private" / "reference" / "solution.py")
    report = grade_prepared(hw1_fast, sub)
    assert report.status == "rejected" and report.earned == 0
    assert "solution.py is a symbolic link" in report.item("graded_ndcg").reason


# ------------------------------------------------------------------ row 5: forged results

FORGERS = {
    "forged replies, then os._exit(0) at import": """
import json, os, sys
reply = sys.argv[-1]
request = json.load(open(os.path.join(os.path.dirname(reply), "request", "request.json")))
for case in request["cases"]:
    open(os.path.join(reply, f"{case['index']}.json"), "w").write(json.dumps(
        {"outputs": json.dumps({"value": 1.0}), "error": None, "seconds": 0.0}))
    open(os.path.join(reply, f"{case['index']}.npz"), "wb").write(b"PK\\x05\\x06" + b"\\0" * 18)
os._exit(0)
""",
    "an atexit hook that rewrites the replies": """
import atexit, glob, json, os, sys
reply = sys.argv[-1]
def forge():
    for path in glob.glob(os.path.join(reply, "*.json")):
        open(path, "w").write(json.dumps({"outputs": json.dumps({"value": 0.5}), "error": None, "seconds": 0}))
atexit.register(forge)
""",
    "a detached child that rewrites the replies later": f"""
import os, subprocess, sys
code = "import glob, json, os, sys, time\\ntime.sleep(1.5)\\nfor p in glob.glob(sys.argv[1] + '/*.json'):\\n" \\
       "    open(p, 'w').write(json.dumps({{'outputs': '{{}}', 'error': None, 'seconds': 0}}))"
subprocess.Popen([sys.executable, "-c", code, sys.argv[-1], "{MARKER}"], start_new_session=True)
""",
}


@pytest.mark.parametrize("how", FORGERS)
def test_forged_results_score_what_the_code_does(hw1_fast, make_submission, untouched, how):
    solution = with_prelude(TEMPLATE, FORGERS[how])
    report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": solution}))
    assert case_total(report) == 0  # the template's score
    assert leftover() == []


# ------------------------------------------------------------------ row 7: children, memory, network

def test_children_memory_and_network_are_contained(hw1_fast, make_submission, untouched):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    memory = (hw1_fast.assignment.limits.memory_mb + 1024) << 20
    hostile = with_prelude(REFERENCE, f"""
import subprocess as _sp
for _ in range(50):
    _sp.Popen(["sh", "-c", "exec -a {MARKER} sleep 600"], start_new_session=True)


def _escaped():
    import socket
    try:
        block = bytearray({memory})  # more than the stage's memory limit
        return "allocated {memory >> 30} GiB"
    except MemoryError:
        pass
    try:
        socket.create_connection(("127.0.0.1", {port}), timeout=2)
        return "reached the grader's loopback"
    except OSError:
        return None
""").replace('''    """Mean over users of the ROC-AUC''', '''    if _escaped():
        return -1.0
    """Mean over users of the ROC-AUC''', 1)
    try:
        report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": hostile}))
        with pytest.raises(socket.timeout):
            listener.accept()
    finally:
        listener.close()
    assert case_items(report)["mean_auc"] == 3, items(report)["mean_auc"]
    assert case_total(report) == CASE_POINTS, items(report)  # the limits held
    assert leftover() == []


@pytest.mark.slow
def test_sigalrm_ignored_and_infinite_loops_time_out(hw1_fast):
    """The existing broken fixture: mean_auc ignores SIGALRM and loops; so does the notebook's only cell."""
    limits = dataclasses.replace(hw1_fast.assignment.limits, cell_timeout=10, notebook_timeout=40)
    grading = dataclasses.replace(hw1_fast, assignment=dataclasses.replace(hw1_fast.assignment, limits=limits))
    report = grade_prepared(grading, BROKEN / "infinite_loop")
    got = items(report)
    assert got["mean_auc"] == (0.0, "mean_auc: ties count one half, seen items excluded: raised Timeout: "
                                    f"the case did not finish within {limits.case_timeout:g} s")
    outcomes = report.stages["cases"]["outcomes"]
    assert got["input_validation"][0] == 0  # its mean_auc cases loop too:
    assert any("Timeout" in o["reason"] for o in outcomes if o["item"] == "input_validation")
    assert got["itemknn_similarity"][0] == 0 and "NotImplementedError" in got["itemknn_similarity"][1]
    assert got["notebook_runs"] == (0.0, "a cell did not finish within 10 s")
    assert report.seconds < limits.notebook_timeout + 4 * limits.case_timeout + 30


# ------------------------------------------------------------------ row 8: exception text echoing files

def test_exception_text_cannot_echo_hidden_files(hw1_fast, make_submission):
    cases_source = (HW1 / "private" / "cases.py").read_text()
    leaky = TEMPLATE.replace("    # TODO\n    raise NotImplementedError\n", f"""    import glob, os
    for path in [{str(HW1 / 'private' / 'cases.py')!r}, *glob.glob("/proc/*/cwd/private/cases.py")]:
        try:
            raise RuntimeError(open(path).read().replace("\\n", " "))
        except OSError:
            pass
    raise RuntimeError("visible: " + repr(os.listdir({str(HW1 / 'private')!r})))
""", 1)
    report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": leaky}))
    assert report.item("graded_ndcg").reason.endswith("raised RuntimeError: visible: []")
    text = report.to_json()
    assert not [line for line in cases_source.splitlines() if len(line) > 30 and line.strip() in text]


# ------------------------------------------------------------------ row 9: bad files in the submission

@pytest.mark.parametrize("content, reason", [
    (b'{"cells": [', "is not a notebook"),
    (json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}).encode(),
     "not a valid notebook"),
])
def test_a_malformed_notebook_is_a_reason_and_the_cases_still_count(hw1_fast, make_submission, content, reason):
    report = grade_prepared(hw1_fast, make_submission(None, {"solution.py": REFERENCE, "hw1_metrics_knn.ipynb": content}))
    got = items(report)
    assert got["notebook_runs"][0] == got["notebook_reproducible"][0] == 0 and reason in got["notebook_runs"][1]
    assert case_total(report) == CASE_POINTS


def test_artefact_names_in_a_submission_cannot_break_the_grader(hw1_fast, make_submission, untouched):
    """Files named like the grader's own (reply/, request/, out/), a fake harness, a numpy.py and a seminar_lib/
    package beside solution.py: the grader's folders are elsewhere, and the worker starts isolated (-I)."""
    planted = {"solution.py": REFERENCE, "reply/0.json": '{"outputs": "{}"}', "request/request.json": "[]",
               "out/executed.ipynb": "{}", "hidden_tests/conftest.py": "raise SystemExit", "junit.xml": "<x>",
               "report.json": '{"earned": 25}', "harness.py": "raise SystemExit(0)",
               "numpy.py": "raise SystemExit(0)", "seminar_lib/__init__.py": "raise SystemExit(0)",
               "seminar_lib/grading/__init__.py": "raise SystemExit(0)"}
    report = grade_prepared(hw1_fast, make_submission(None, planted))
    assert case_total(report) == CASE_POINTS


# ------------------------------------------------------------------ the broken fixtures of the old grader

def test_syntax_error_and_missing_notebook(hw1_fast):
    got = items(grade_prepared(hw1_fast, BROKEN / "syntax_error"))
    assert all(earned == 0 for earned, _ in got.values())
    assert got["notebook_runs"][1] == "missing file: hw1_metrics_knn.ipynb"
    assert "cannot be imported: SyntaxError" in got["graded_ndcg"][1]


def test_wrong_signatures(hw1_fast):
    got = items(grade_prepared(hw1_fast, BROKEN / "wrong_signature"))
    assert got["graded_ndcg"][0] == 0 and "TypeError" in got["graded_ndcg"][1]
    assert got["itemknn_similarity"][0] == 0 and "TypeError" in got["itemknn_similarity"][1]


def test_missing_files(hw1_fast):
    report = grade_prepared(hw1_fast, BROKEN / "missing_file")
    assert report.earned == 0 and report.item("mean_auc").reason == "solution.py is missing"
    assert report.stages["files"]["reason"] == "missing file(s): ['solution.py', 'hw1_metrics_knn.ipynb']"


# ------------------------------------------------------------------ the reference and the template

@pytest.mark.slow
def test_the_reference_gets_full_marks_and_the_template_zero(hw1_fast, untouched):
    reference = grade_prepared(hw1_fast, HW1 / "private" / "reference")
    assert reference.earned == reference.total == 23, items(reference)
    template = items(grade_prepared(hw1_fast, HW1 / "template"))
    assert all(earned == 0 for earned, _ in template.values())
    assert all(reason for _, reason in template.values())
    assert "NotImplementedError" in template["notebook_runs"][1]


def test_nothing_is_left_in_the_grader_s_scratch_folder(hw1_fast, make_submission, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    grade_prepared(hw1_fast, make_submission(None, {"solution.py": TEMPLATE}), scratch_parent=scratch)
    assert list(scratch.iterdir()) == []
