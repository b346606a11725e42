"""The instructor's batch runner (seminar_lib.course.run, .signals, .cli): runs of tiny notebooks, one that
works and one that fails, workers, signals, resuming."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from seminar_lib import course
from seminar_lib.course import run as course_run  # where run_course looks its helpers up


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
    monkeypatch.setattr(course_run, "_run_one", interrupt)
    with pytest.raises(KeyboardInterrupt):
        course.run_course(course.list_notebooks(folder=notebooks), {}, tmp_path / "run", echo=False)
    manifest = json.loads((tmp_path / "run" / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["finished"]
    assert [r["status"] for r in manifest["notebooks"]] == ["pending", "pending"]


def _pid_alive(pid: int) -> bool:
    """True while ``pid`` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.slow
def test_workers_run_notebooks_side_by_side_each_with_its_own_environment(tmp_path, monkeypatch):
    """Three notebooks on three workers: every metrics file arrives, each kernel got its own slot's
    CUDA_VISIBLE_DEVICES, and the runner's own os.environ is left untouched."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    for n in (1, 2, 3):
        write_notebook(folder / f"0{n}_nb.ipynb", [
            "import os, time\ntime.sleep(2)  # the three kernels overlap",
            f'record_metrics("0{n}_nb", {{"M": {{"gpu@10": float(os.environ["CUDA_VISIBLE_DEVICES"]), '
            f'"run@10": float(os.environ["SEMINAR_RUN_DIR"].endswith("run"))}}}})'])
    monkeypatch.setattr(course_run, "gpu_assignment", lambda workers, device: (["7", "8", "9"][:workers], None))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    before = dict(os.environ)
    state = course.run_course(course.list_notebooks(folder=folder), {}, tmp_path / "run", workers=3, echo=False)
    assert state.status == "complete", [r.error for r in state.notebooks]
    assert sorted(p.name for p in (tmp_path / "run").glob("*.metrics.json")) == [f"0{n}_nb.metrics.json" for n in (1, 2, 3)]
    assert [r.status for r in state.notebooks] == ["ok"] * 3
    recorded = [json.loads((tmp_path / "run" / f"0{n}_nb.metrics.json").read_text())["metrics"]["M"]
                for n in (1, 2, 3)]
    assert sorted(m["gpu@10"] for m in recorded) == [7.0, 8.0, 9.0]  # one GPU per concurrently running kernel
    assert all(m["run@10"] == 1.0 for m in recorded)
    assert dict(os.environ) == before


@pytest.mark.slow
@pytest.mark.parametrize("signum, code, to_group", [(signal.SIGINT, 130, True), (signal.SIGTERM, 143, False)])
def test_a_signal_stops_a_real_run_and_its_kernel(tmp_path, signum, code, to_group):
    """Ctrl-C (SIGINT to the terminal's process group) and a scheduler's SIGTERM (to the runner) stop the run:
    the running kernel is gone, run.json says interrupted with the notebook that was running, exit 128 + signal."""
    folder = tmp_path / "notebooks"
    folder.mkdir()
    pid_file = tmp_path / "kernel.pid"
    write_notebook(folder / "01_ok.ipynb", ['record_metrics("01_ok", {"Pop": {"ndcg@10": 0.1}})'])
    write_notebook(folder / "02_long.ipynb", [
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)"])
    write_notebook(folder / "03_never.ipynb", ["x = 1"])
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "seminar_lib.course", "run", "--notebooks-dir", str(folder),
                             "--output", str(out)], start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.stdout.read()
            time.sleep(0.2)
        kernel = int(pid_file.read_text())
        assert _pid_alive(kernel)
        started = time.monotonic()
        if to_group:
            os.killpg(proc.pid, signum)
        else:
            proc.send_signal(signum)
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == code, output
    assert time.monotonic() - started < 30  # promptly, not after the 600 s cell
    assert not _pid_alive(kernel)
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["stopped_by"] == signal.Signals(signum).name
    assert [r["status"] for r in manifest["notebooks"]] == ["ok", "interrupted", "pending"]
    assert manifest["finished"] and "while running 02_long" in output


@pytest.mark.slow
def test_resume_reruns_the_selected_notebooks_into_the_same_folder(notebooks, tmp_path, capsys):
    out = tmp_path / "run"
    assert course.main(["run", "--notebooks-dir", str(notebooks), "--output", str(out), "--seed", "7"]) == 1
    first = json.loads((out / "run.json").read_text())
    kept = next(r for r in first["notebooks"] if r["notebook"] == "01_ok")
    # the cause of the failure fixed, only that notebook runs again, into the same folder
    write_notebook(notebooks / "02_fail.ipynb", ['record_metrics("02_fail", {"ALS": {"ndcg@10": 0.15, "coverage@10": 0.2}})'])
    with pytest.raises(ValueError, match="earlier run's parameters"):  # one folder, one set of parameters
        course.run_course(course.list_notebooks(["02"], folder=notebooks), {"SEED": 8}, out, resume=True)
    code = course.main(["run", "--notebooks-dir", str(notebooks), "--output", str(out), "--seed", "7",
                        "--notebooks", "02", "--resume"])
    assert code == 0 and "complete: 2/2 notebooks ok" in capsys.readouterr().out
    manifest = json.loads((out / "run.json").read_text())
    assert manifest["status"] == "complete" and manifest["started"] == first["started"]
    assert [r["notebook"] for r in manifest["notebooks"]] == ["01_ok", "02_fail"]
    assert manifest["notebooks"][0] == kept  # untouched: same status, seconds, settings
    assert manifest["notebooks"][1]["status"] == "ok" and manifest["notebooks"][1]["error"] is None
    assert [r["notebooks"] for r in manifest["resumed"]] == [["02_fail"]]
    board = (out / "leaderboard.csv").read_text().splitlines()
    assert [line.split(",")[:2] for line in board[1:]] == [["01_ok", "EASE"], ["02_fail", "ALS"], ["01_ok", "Pop"]]


def test_resume_needs_an_earlier_run_that_has_ended(notebooks, tmp_path):
    selected = course.list_notebooks(["01"], folder=notebooks)
    with pytest.raises(FileNotFoundError, match="no run.json"):
        course.run_course(selected, {}, tmp_path / "none", resume=True)
    running = tmp_path / "running"
    running.mkdir()
    course.RunState(running, {}, notebooks=[course.NotebookResult("01_ok")]).save()  # status "running"
    with pytest.raises(ValueError, match="still running"):
        course.run_course(selected, {}, running, resume=True)
    with pytest.raises(SystemExit):  # --resume without the folder to resume
        course.main(["run", "--notebooks-dir", str(notebooks), "--resume"])


@pytest.mark.slow
def test_a_relative_output_folder_receives_the_metrics(notebooks, tmp_path, monkeypatch):
    # the kernels run in the notebooks' folder: a relative --output must still be the one the metrics go to
    monkeypatch.chdir(tmp_path)
    state = course.run_course(course.list_notebooks(["01"], folder=notebooks), {}, Path("out"), echo=False)
    assert state.status == "complete" and (tmp_path / "out" / "01_ok.metrics.json").is_file()
    assert not (notebooks / "out").exists()
    assert (tmp_path / "out" / "leaderboard.csv").read_text().splitlines()[1].startswith("01_ok,EASE")
