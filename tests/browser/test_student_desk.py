"""The student's desk: JupyterLab as `make setup` installs it, driven by headless Chromium.

A real JupyterLab server and browser (``jupyter_desk.py`` beside this file), the repository as the served root
and a fresh folder under ``work/`` for the copies the tests open, run and save. Screenshots of what
a student sees go to the test's temporary folder (their paths are printed; ``pytest -s`` shows them).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest

from jupyter_desk import ROOT, Lab, LabServer, copy_notebook, missing_requirements, work_folder

pytestmark = [pytest.mark.browser, pytest.mark.slow,
              pytest.mark.skipif(missing_requirements() is not None, reason=str(missing_requirements()))]


def homework_under_test() -> tuple[str, list[Path], Callable[[Path], Any]]:
    """The homework a student works through here: its name, the files of a student's folder (the
    template's notebook and the reference solution) and the grading call (→ a report with
    ``earned``, ``total`` and ``items``). Repoint these three when the homework or the grader moves."""
    from seminar_lib.grading import grade_submission

    name = "hw1_metrics_knn"
    folder = ROOT / "homework" / name
    files = [folder / "template" / f"{name}.ipynb", folder / "private" / "reference" / "solution.py"]
    return name, files, lambda submission: grade_submission(submission, name)


COURSE_NOTEBOOK = ROOT / "notebooks" / "01_data_and_baselines.ipynb"
# Committed notebooks opened and saved in the browser, which must leave every byte as it is.
OPENED_UNCHANGED = [COURSE_NOTEBOOK]
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabServer, Lab, Path]]:
    """A JupyterLab server, a browser page on it and a fresh ``work/`` folder inside its root."""
    home = tmp_path_factory.mktemp("lab-home")
    with LabServer(home) as server, work_folder("browser-test") as work, Lab(server) as lab:
        yield server, lab, work


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"\nscreenshots in {folder}")
    return folder


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def nbval(notebook: Path) -> subprocess.CompletedProcess[str]:
    """nbval on ``notebook`` as `make nbval` runs it (the root conftest.py applies: the served root is the repo)."""
    cmd = [sys.executable, "-m", "pytest", "-p", "no:python", "--nbval", "--nbval-current-env",
           "--nbval-sanitize-with", str(ROOT / "seminar_lib" / "nbval_sanitize.cfg"), "--nbval-cell-timeout", "300",
           "-p", "no:cacheprovider", "-o", "addopts=", "-o", "testpaths=", "-q", "--color=no", relative(notebook)]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600,
                          env={**os.environ, "TQDM_DISABLE": "1"})


def test_landing_page_is_start_md_rendered_and_no_news_popup(desk, screenshots):
    server, lab, work = desk
    lab.load()
    lab.page.wait_for_selector(".jp-RenderedMarkdown h1", timeout=30_000)
    time.sleep(1.0)  # the news question, when enabled, is a toast shown shortly after start
    lab.page.screenshot(path=str(screenshots / "landing.png"))
    assert "Start here" in lab.page.inner_text(".jp-RenderedMarkdown h1")
    assert lab.page.get_by_text("official Jupyter news").count() == 0
    listing = {entry["name"] for entry in server.api("GET", "contents/")["content"]}
    assert {"notebooks", "homework", "seminar_lib", "START.md"} <= listing


@pytest.mark.parametrize("committed", OPENED_UNCHANGED, ids=lambda p: p.stem)
def test_opening_and_saving_a_committed_notebook_changes_no_byte(desk, committed):
    server, lab, work = desk
    copy = copy_notebook(committed, work / "opened")
    state = lab.open(relative(copy))
    time.sleep(1.0)  # JupyterLab writes the kernel's spec and language_info into the model after it starts
    assert state["kernelName"] == "python3" and not lab.state()["dirty"], "the notebook looks modified on opening"
    lab.save()
    assert copy.read_bytes() == committed.read_bytes()
    server.open_and_save(relative(copy))  # and a contents-API client's round trip
    assert copy.read_bytes() == committed.read_bytes()
    lab.close_all()


def test_course_notebook_runs_clean_and_its_saved_copy_passes_nbval(desk, screenshots):
    server, lab, work = desk
    copy = copy_notebook(COURSE_NOTEBOOK, work / "course")
    lab.open(relative(copy))
    lab.run_all(timeout=300, screenshot_after=4.0, screenshot=screenshots / "01_running.png")
    lab.page.screenshot(path=str(screenshots / "01_done.png"))
    assert lab.error_outputs() == []
    lab.save()
    lab.close_all()
    result = nbval(copy)
    assert result.returncode == 0, result.stdout[-3000:]


def test_homework_saved_from_jupyterlab_grades_full_marks(desk, screenshots):
    server, lab, work = desk
    name, files, grade = homework_under_test()
    folder = work / name
    folder.mkdir()
    for f in files:
        shutil.copy2(f, folder / f.name)
    notebook = folder / files[0].name
    lab.open(relative(notebook))
    lab.run_all(timeout=300)
    lab.page.screenshot(path=str(screenshots / f"{name}_done.png"))
    assert lab.error_outputs() == []
    lab.save()
    lab.close_all()
    report = grade(folder)
    lost = [(i.name, i.earned, i.reason) for i in report.items if i.reason]
    assert report.earned == report.total and not lost, lost


def test_progress_bars_leave_saved_notebooks_reproducible_and_reopen_without_errors(desk, screenshots):
    """A bar that goes (the default) leaves an output without data; one kept on screen (``leave=True``)
    leaves a widget view that nbval drops (the root conftest.py) and that shows an error on reopening."""
    server, lab, work = desk
    notebook = work / "bars" / "bars.ipynb"
    notebook.parent.mkdir()
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time\nfrom seminar_lib.progress import track"),
        nbformat.v4.new_code_cell("for _ in track(range(3), desc='goes'):\n    time.sleep(0.2)\nprint('trained')"),
        nbformat.v4.new_code_cell("for _ in track(range(3), desc='stays', leave=True):\n    time.sleep(0.2)"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3 (recsys course)", "language": "python"}})
    nbformat.write(nb, notebook)
    lab.open(relative(notebook))
    lab.run_all(timeout=120)
    assert lab.error_outputs() == []
    lab.save()
    saved = json.loads(notebook.read_text())
    goes, stays = saved["cells"][1]["outputs"], saved["cells"][2]["outputs"]
    assert [o["output_type"] for o in goes] == ["display_data", "stream"] and goes[0]["data"] == {}
    assert WIDGET_VIEW in stays[0]["data"] and "stays" in "".join(stays[0]["data"]["text/plain"])
    lab.close_all()
    lab.load()
    lab.open(relative(notebook))
    time.sleep(2.0)  # the widget manager restores (nothing) and renders the saved views
    lab.page.screenshot(path=str(screenshots / "bars_reopened.png"))
    assert lab.error_outputs() == ["Error displaying widget"]  # the kept bar only
    lab.close_all()
    result = nbval(notebook)
    assert result.returncode == 0, result.stdout[-3000:]
