"""The instructor's batch runner on two tiny notebooks: one that works, one that fails."""

from __future__ import annotations

import json

import nbformat
import pytest

from seminar_lib import course

PARAMS = 'DATASET = "synthetic"\nPROFILE = "smoke"\nDEVICE = "auto"\nSEED = 42\nK = 10\nEPOCHS = None'


def write_notebook(path, cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("from seminar_lib.record import record_metrics")]
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells.append(params)
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


@pytest.fixture
def notebooks(tmp_path):
    folder = tmp_path / "notebooks"
    folder.mkdir()
    write_notebook(folder / "01_ok.ipynb", [
        'record_metrics("01_ok", {"Pop": {"ndcg@10": 0.1, "coverage@10": 0.05}, '
        '"EASE": {"ndcg@10": 0.2 + SEED / 1000, "coverage@10": 0.3}})'])
    write_notebook(folder / "02_fail.ipynb", ["x = 1", "raise ValueError('boom')"])
    return folder


@pytest.mark.slow
def test_run_reports_failures_writes_leaderboard_and_manifest(notebooks, tmp_path, capsys):
    out = tmp_path / "run"
    code = course.main(["run", "--notebooks-dir", str(notebooks), "--output", str(out), "--seed", "7", "-p", "EPOCHS=3"])
    assert code == 1
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "failed" and manifest["parameters"] == {"SEED": 7, "EPOCHS": 3}
    status = {r["notebook"]: r for r in manifest["notebooks"]}
    assert status["01_ok"]["status"] == "ok" and status["02_fail"]["status"] == "failed"
    assert status["02_fail"]["error"]["ename"] == "ValueError" and status["02_fail"]["error"]["cell"] == 5  # after the injected parameters cell
    assert manifest["environment"]["versions"]["torch"] and manifest["environment"]["device"].startswith(("cpu", "cuda"))
    assert (out / "01_ok.ipynb").is_file() and (out / "02_fail.log").is_file()
    board = (out / "leaderboard.csv").read_text().splitlines()
    assert board[0].startswith("notebook,model") and board[1].startswith("01_ok,EASE,0.207")  # SEED was injected
    assert "| 01_ok | EASE |" in (out / "leaderboard.md").read_text()
    assert (out / "leaderboard.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "02_fail: failed" in printed and "ValueError: boom" in printed
    with pytest.raises(FileExistsError):  # an earlier run is never overwritten
        course.run_course(course.list_notebooks(folder=notebooks), {}, out)


def test_unknown_parameters_are_refused_before_anything_runs(notebooks, tmp_path):
    with pytest.raises(ValueError, match=r"no selected notebook has the parameter\(s\) \['EPOCHZ'\]"):
        course.run_course(course.list_notebooks(folder=notebooks), {"EPOCHZ": 1}, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_interrupted_run_is_marked_partial(notebooks, tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt
    monkeypatch.setattr(course, "_run_one", interrupt)
    with pytest.raises(KeyboardInterrupt):
        course.run_course(course.list_notebooks(folder=notebooks), {}, tmp_path / "run", echo=False)
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["finished"]
    assert [r["status"] for r in manifest["notebooks"]] == ["pending", "pending"]


def test_markdown_table():
    import polars as pl
    table = course.markdown_table(pl.DataFrame({"model": ["A"], "ndcg@10": [0.123456], "x": [None]}))
    assert table.splitlines() == ["| model | ndcg@10 | x |", "| --- | --- | --- |", "| A | 0.1235 | – |"]
