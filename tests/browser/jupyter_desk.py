"""A JupyterLab server and a headless Chromium driving it, as a student's desk is.

:class:`LabServer` starts ``jupyter lab`` of this environment on 127.0.0.1 (a free port, a random
token, the repository as its root, JupyterLab's settings as ``make setup`` installs them) with its
config, data, runtime and user-settings folders in a temporary directory, so nothing from the
machine's user folders (another ``python3`` kernel, saved workspaces, user settings) leaks in.
:class:`Lab` is one browser page on that server: open a notebook, run all its cells, save it, read
what the page shows. The app object is exposed to the page (``window.jupyterapp``,
``--LabApp.expose_app_in_browser``) so the test reads the document's state (dirty flag, kernel
status, errors) instead of guessing it from pixels; the actions go through JupyterLab's own commands
(those its menus run).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
LANDING = "/lab/tree/START.md"  # as `make lab` starts it
CHROMIUM = Path("/usr/bin/chromium")  # Debian's package (.ci/run installs it); never `playwright install`


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def missing_requirements() -> str | None:
    """Why the browser test cannot run here (None when it can): Chromium or playwright missing."""
    if not CHROMIUM.is_file():
        return f"Debian's chromium is not installed at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[dev]')"
    return None


class LabServer:
    """``jupyter lab`` on 127.0.0.1 serving ``root`` (see the module docstring); a context manager."""

    def __init__(self, home: Path, root: Path = ROOT, *, env: Mapping[str, str] | None = None,
                 startup_timeout: float = 60.0) -> None:
        self.root, self.home, self.startup_timeout = root, home, startup_timeout
        self.port, self.token = free_port(), secrets.token_hex(16)
        self.env = dict(os.environ if env is None else env)
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR",
                     "JUPYTERLAB_SETTINGS_DIR", "JUPYTERLAB_WORKSPACES_DIR", "IPYTHONDIR"):
            folder = home / name.lower()
            folder.mkdir(parents=True, exist_ok=True)
            self.env[name] = str(folder)
        self.env.pop("JUPYTER_PATH", None)
        self.env.pop("TQDM_DISABLE", None)  # a student's desk shows the progress bars
        self.log = home / "server.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> LabServer:
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ServerApp.ip=127.0.0.1",
               f"--ServerApp.port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--LabApp.expose_app_in_browser=True", f"--LabApp.default_url={LANDING}", "--allow-root"]
        with open(self.log, "wb") as log:
            self._process = subprocess.Popen(cmd, cwd=self.root, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"jupyter lab exited with {self._process.returncode}:\n{self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError, urllib.error.URLError):
                self.api("GET", "status")
                return self
            time.sleep(0.3)
        self.__exit__(None, None, None)
        raise TimeoutError(f"jupyter lab did not answer within {self.startup_timeout:.0f} s; "
                           f"log:\n{self.log.read_text()[-2000:]}")

    def __exit__(self, *exc: object) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def api(self, method: str, path: str, body: Any = None) -> Any:
        """One call of the server's REST API (``/api/<path>``) with the token; the decoded JSON reply."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"{self.url}/api/{path}", data=data, method=method,
                                         headers={"Authorization": f"token {self.token}",
                                                  "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as reply:
            text = reply.read()
        return json.loads(text) if text else None

    def open_and_save(self, relative: str) -> None:
        """What a client that loads and saves without editing does: GET the notebook model, PUT it back."""
        model = self.api("GET", f"contents/{relative}?type=notebook&content=1")
        self.api("PUT", f"contents/{relative}", {"type": "notebook", "format": "json", "content": model["content"]})


# JavaScript run in the page; `app` is window.jupyterapp, `panel` the current notebook panel.
_PANEL = "const app = window.jupyterapp; const panel = app.shell.currentWidget;"
_STATE = _PANEL + """
  if (!panel || !panel.context || !panel.sessionContext || !panel.content.widgets) return null;
  const kernel = panel.sessionContext.session ? panel.sessionContext.session.kernel : null;
  return {path: panel.context.path, dirty: panel.context.model.dirty,
          kernel: kernel ? kernel.status : null, kernelName: kernel ? kernel.name : null,
          running: panel.content.widgets.filter(c => c.model.type === 'code' && c.model.executionState === 'running').length,
          pending: panel.content.widgets.filter(c => c.model.type === 'code' && c.promptNode &&
                                                     c.promptNode.textContent.includes('*')).length};
"""

_ERRORS = """
  const found = [];
  for (const cell of panel.content.widgets) {
    if (cell.model.type !== 'code') continue;
    const outputs = cell.model.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const o = outputs.get(i).toJSON();
      if (o.output_type === 'error') found.push(`error: ${o.ename}: ${o.evalue}`);
      if (o.output_type === 'stream' && o.name === 'stderr') found.push(`stderr: ${[].concat(o.text).join('')}`);
    }
    if ((cell.node.textContent || '').includes('Error displaying widget')) found.push('Error displaying widget');
  }
  return found;
"""


class Lab:
    """One page of JupyterLab in headless Chromium; a context manager (closes the browser)."""

    def __init__(self, server: LabServer, *, width: int = 1400, height: int = 900) -> None:
        self.server, self.size = server, {"width": width, "height": height}

    def __enter__(self) -> Lab:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self._browser = self._playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                                         args=["--no-sandbox", "--disable-gpu"])
        self.page = self._browser.new_page(viewport=self.size)
        self.console_errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.console_errors.append(m.text))
        self.load()
        return self

    def __exit__(self, *exc: object) -> None:
        self._browser.close()
        self._playwright.stop()

    def load(self) -> None:
        """(Re)load the page at the server's root, as a student's browser does: it lands on START.md."""
        self.page.goto(f"{self.server.url}/?token={self.server.token}")
        self.page.wait_for_function("window.jupyterapp && window.jupyterapp.shell", timeout=60_000)
        self.page.wait_for_selector("#jp-main-dock-panel", timeout=60_000)
        self.page.evaluate("() => window.jupyterapp.restored")
        landing = LANDING.rsplit("/", 1)[1]  # opened after the layout is restored; wait, or it takes the focus later
        self.page.wait_for_function("(name) => { const w = window.jupyterapp.shell.currentWidget;"
                                    " return w && w.title.label === name; }", arg=landing, timeout=60_000)

    def command(self, name: str, args: Mapping[str, Any] | None = None) -> Any:
        """Run one of JupyterLab's commands (what a menu item or a shortcut runs)."""
        return self.page.evaluate("([name, args]) => window.jupyterapp.commands.execute(name, args)",
                                  [name, dict(args or {})])

    def state(self) -> dict[str, Any] | None:
        """The current notebook's path, dirty flag, kernel status and number of cells running or queued."""
        return self.page.evaluate(f"() => {{ {_STATE} }}")

    def open(self, relative: str, *, timeout: float = 90.0) -> dict[str, Any]:
        """Open the notebook at ``relative`` (to the server's root) and wait until its kernel is idle."""
        self.page.evaluate("""async (path) => { const app = window.jupyterapp;
            const widget = await app.commands.execute('docmanager:open', {path});
            app.shell.activateById(widget.id); }""", relative)
        return self.wait(lambda s: s and s["path"] == relative and s["kernel"] == "idle", timeout, f"open {relative}")

    def wait(self, done: Any, timeout: float, what: str) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            state = self.state()
            if done(state):
                return state
            time.sleep(0.25)
        raise TimeoutError(f"{what}: not done within {timeout:.0f} s; last state {state}")

    def run_all(self, *, timeout: float = 300.0, screenshot_after: float | None = None,
                screenshot: Path | None = None) -> dict[str, Any]:
        """Run → Run All Cells, then wait for every cell to finish (optionally a screenshot mid-run).

        The command's promise resolves when the last cell has run; the page keeps its outcome in
        ``window.__runAll`` so this side polls it without holding the page busy."""
        self.page.evaluate("""() => { window.__runAll = null;
            window.jupyterapp.commands.execute('notebook:run-all-cells')
              .then(ok => { window.__runAll = ok === false ? 'failed' : 'done'; },
                    err => { window.__runAll = 'error: ' + err; }); }""")
        start = time.monotonic()
        if screenshot is not None and screenshot_after is not None:
            time.sleep(screenshot_after)
            self.page.screenshot(path=str(screenshot))
        outcome = None
        while time.monotonic() - start < timeout:
            outcome = self.page.evaluate("() => window.__runAll")
            if outcome is not None:
                break
            time.sleep(0.25)
        else:
            raise TimeoutError(f"run all cells: not done within {timeout:.0f} s; last state {self.state()}")
        return self.wait(lambda s: s and s["kernel"] == "idle" and s["running"] == 0, 30, f"run all ({outcome})")

    def save(self) -> dict[str, Any]:
        """File → Save Notebook, then wait until the document is clean."""
        self.command("docmanager:save")
        return self.wait(lambda s: s and not s["dirty"], 30, "save")

    def close_all(self) -> None:
        """Close every tab without saving and shut the kernels down."""
        self.page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
        with contextlib.suppress(Exception):
            for session in self.server.api("GET", "sessions"):
                self.server.api("DELETE", f"sessions/{session['id']}")

    def error_outputs(self) -> list[str]:
        """The texts of every error output, stderr stream and 'Error displaying widget' the page shows."""
        return self.page.evaluate("() => {" + _PANEL + _ERRORS + "}")


def copy_notebook(src: Path, dest_dir: Path) -> Path:
    """Copy ``src`` byte for byte into ``dest_dir``; returns the copy."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy2(src, dest_dir / src.name))


@contextlib.contextmanager
def work_folder(name: str) -> Iterator[Path]:
    """A fresh folder ``work/<name>-<random>`` inside the served root (``work/`` is ignored by git), removed after."""
    folder = ROOT / "work" / f"{name}-{secrets.token_hex(4)}"
    folder.mkdir(parents=True)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
