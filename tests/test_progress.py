"""Progress bars: hidden under TQDM_DISABLE, gone from a notebook's outputs when their loop ends, and
dropped by nbval where one stays. (The real JupyterLab's side: tests/browser.)"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

from seminar_lib.notebook_outputs import WIDGET_VIEW
from seminar_lib.progress import Bar, bars_disabled, track

ROOT = Path(__file__).resolve().parents[1]


def test_tqdm_disable_hides_bars_even_where_tqdm_notebook_would_ignore_it(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert bars_disabled() and track(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "0")
    assert not bars_disabled()
    monkeypatch.delenv("TQDM_DISABLE")
    assert not bars_disabled()
    assert list(track(range(3), desc="x")) == [0, 1, 2]


def test_bars_go_when_their_loop_ends_unless_asked_to_stay(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    bar = track(range(2), desc="x", file=io.StringIO())
    assert isinstance(bar, Bar) and bar.leave is False and list(bar) == [0, 1]
    assert track(range(2), leave=True, file=io.StringIO()).leave is True


@pytest.fixture
def executed_with_bars(monkeypatch) -> Path:
    """A notebook run by a kernel with bars on (as in JupyterLab), in a folder under the repository's work/."""
    from nbclient import NotebookClient

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("from seminar_lib.progress import track"),
        nbformat.v4.new_code_cell("for _ in track(range(3), desc='goes'):\n    pass\nprint('trained')"),
        nbformat.v4.new_code_cell("for _ in track(range(3), desc='stays', leave=True):\n    pass"),
    ], metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    (ROOT / "work").mkdir(exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="test-progress-", dir=ROOT / "work"))
    path = folder / "bars.ipynb"
    nbformat.write(nb, path)
    yield path
    shutil.rmtree(folder, ignore_errors=True)


def nbval(notebook: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "pytest", "-p", "no:python", "--nbval", "--nbval-current-env", "-p", "no:cacheprovider",
           "-o", "addopts=", "-o", "testpaths=", "-q", "--color=no", *extra, str(notebook.relative_to(ROOT))]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TQDM_DISABLE": "1"})


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_finished_bar_leaves_an_empty_output_and_nbval_drops_a_bar_that_stays(executed_with_bars):
    nb = nbformat.read(executed_with_bars, as_version=4)
    goes, stays = nb.cells[1].outputs, nb.cells[2].outputs
    assert goes[0].output_type == "display_data" and goes[0].data == {}  # updated through its display id
    assert [o.get("text") for o in goes[1:]] == ["trained\n"]
    assert WIDGET_VIEW in stays[0].data and "stays" in stays[0].data["text/plain"]
    assert nbval(executed_with_bars).returncode == 0  # the root conftest.py drops the kept bar
    without_hook = nbval(executed_with_bars, "--noconftest")
    assert without_hook.returncode != 0 and "Cell 2" in without_hook.stdout
