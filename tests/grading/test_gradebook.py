"""A class on the tiny assignment: one report folder per submission (never shared), the gradebook and the
leaderboard, resumable by content hash, shards merged into the same gradebook."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from grading_kit import TINY

from seminar_lib.grading import gradebook as G
from seminar_lib.grading.cli import main


@pytest.fixture
def klass(tmp_path):
    root = tmp_path / "class"
    shutil.copytree(TINY / "private" / "reference", root / "alice" / "submission")
    shutil.copytree(TINY / "template", root / "bob" / "submission")
    (root / "carol").mkdir(parents=True)
    (root / "carol" / "solution.py").write_text("def add(a, b:\n")  # a syntax error, at the top of her folder
    (root / "mallory").symlink_to("/etc")
    (root / "eve").mkdir()  # an empty folder: every file missing
    return root


def test_ids_are_unique_and_filesystem_safe():
    ids = {G.submission_id(r) for r in ("alice/submission", "bob/submission", "alice-submission", "a b/ü?*")}
    assert len(ids) == 4 and all("/" not in i and " " not in i for i in ids)
    assert G.submission_id("alice/submission").startswith("alice-submission-")


def test_a_class_is_graded_into_separate_folders_and_a_gradebook(tiny, klass, tmp_path, untouched):
    out = tmp_path / "out"
    reports = G.grade_class(tiny, klass, out, workers=2, log=False)
    by = {r.student: r for r in reports}
    assert set(by) == {"alice/submission", "bob/submission", "carol", "mallory", "eve"}
    assert by["alice/submission"].earned == 8 and by["bob/submission"].earned == 0
    assert by["mallory"].status == "rejected" and "symbolic link" in by["mallory"].items[0].reason
    assert "cannot be imported: SyntaxError" in by["carol"].item("add").reason
    assert by["eve"].item("add").reason == "solution.py is missing"
    assert len({r.id for r in reports}) == 5 and all((out / r.id / "report.json").is_file() for r in reports)
    rows = {r["student"]: r for r in csv.DictReader((out / "gradebook.csv").open())}
    assert float(rows["alice/submission"]["earned"]) == 8 and float(rows["alice/submission"]["add"]) == 2
    assert rows["alice/submission"]["sha256"] == by["alice/submission"].sha256 and rows["mallory"]["status"] == "rejected"
    assert len(json.loads((out / "gradebook.json").read_text())) == 5 and "| alice/submission |" in (out / "gradebook.md").read_text()
    board = list(csv.DictReader((out / "leaderboard.csv").open()))
    assert [(b["rank"], b["student"], float(b["value"])) for b in board] == [("1", "alice/submission", 0.75)]


def test_an_unchanged_submission_is_not_graded_again(tiny, klass, tmp_path, monkeypatch):
    out = tmp_path / "out"
    G.grade_class(tiny, klass, out, workers=2, log=False)
    (klass / "bob" / "submission" / "solution.py").write_text((TINY / "private" / "reference" / "solution.py").read_text())
    graded = []
    real = G.grade_prepared
    monkeypatch.setattr(G, "grade_prepared", lambda g, path: graded.append(path.relative_to(klass)) or real(g, path))
    reports = {r.student: r for r in G.grade_class(tiny, klass, out, workers=2, log=False)}
    assert sorted(map(str, graded)) == ["bob/submission", "mallory"]  # the unchanged ones are kept; a rejected one is retried
    assert reports["bob/submission"].item("add").earned == 2


def test_shards_merge_into_the_same_gradebook(tiny, klass, tmp_path, capsys):
    whole = tmp_path / "whole"
    G.grade_class(tiny, klass, whole, workers=2, log=False)
    parts = [tmp_path / f"part{i}" for i in range(2)]
    for i, part in enumerate(parts):
        G.grade_class(tiny, klass, part, workers=1, shard=(i, 2), log=False)
        assert not (part / "gradebook.csv").exists()
    merged = tmp_path / "merged"
    assert main(["merge", *map(str, parts), "--output", str(merged)]) == 0
    def table(folder):
        return sorted((r["student"], r["earned"], r["status"], r["sha256"]) for r in csv.DictReader((folder / "gradebook.csv").open()))
    assert table(merged) == table(whole)
    assert main(["merge", str(parts[0]), str(parts[0]), "--output", str(merged)]) == 2
    assert "two reports for submission" in capsys.readouterr().err
