"""A class of eleven mixed homework-1 submissions (reference, template, broken, hostile, two folders both
named ``submission``) graded with two workers: the gradebook is right for each, nothing is left running,
and nothing outside the stages changed."""

from __future__ import annotations

import csv
import shutil

import pytest
from grading_kit import BROKEN, HW1, MARKER, REFERENCE, TEMPLATE, leftover, with_prelude
from test_attacks import FORGERS, READERS

from seminar_lib.grading import gradebook as G

SPAWNER = with_prelude(REFERENCE, f"""
import subprocess as _sp
for _ in range(50):
    _sp.Popen(["sh", "-c", "exec -a {MARKER} sleep 600"], start_new_session=True)
""")


@pytest.mark.slow
def test_a_mixed_class_with_two_workers(hw1_fast, tmp_path, untouched):
    root = tmp_path / "class"
    shutil.copytree(HW1 / "private" / "reference", root / "ref")
    shutil.copytree(HW1 / "template", root / "tmpl")
    for name in ("syntax_error", "missing_file", "wrong_signature"):
        shutil.copytree(BROKEN / name, root / name)
    solutions = {"alice/submission": REFERENCE, "bob/submission": TEMPLATE, "spawner": SPAWNER,
                 "forger": with_prelude(TEMPLATE, FORGERS["forged replies, then os._exit(0) at import"]),
                 "reader": READERS["by repository path"]}
    for folder, text in solutions.items():
        (root / folder).mkdir(parents=True)
        (root / folder / "solution.py").write_text(text)
    (root / "linked").symlink_to(HW1 / "private" / "reference")
    out = tmp_path / "grades"
    reports = {r.student: r for r in G.grade_class(hw1_fast, root, out, workers=2, log=False)}
    expected = {"ref": 23, "tmpl": 0, "syntax_error": 0, "missing_file": 0, "wrong_signature": 0,
                "alice/submission": 19, "bob/submission": 0, "spawner": 19, "forger": 0, "reader": 0, "linked": 0}
    assert {s: r.earned for s, r in reports.items()} == expected
    assert reports["linked"].status == "rejected" and all(
        r.status == "graded" for s, r in reports.items() if s != "linked")
    rows = list(csv.DictReader((out / "gradebook.csv").open()))
    assert len(rows) == 11 and len({r["id"] for r in rows}) == 11
    assert {r["student"]: float(r["earned"]) for r in rows} == expected
    assert leftover() == []
