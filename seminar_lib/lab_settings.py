"""JupyterLab's defaults for the course, installed into an environment as its ``overrides.json``.

JupyterLab reads ``<prefix>/share/jupyter/lab/settings/overrides.json`` as the defaults of its
settings (a student's own choices in Settings still win). The course's:

* no news pop-up: "Would you like to get notified about official Jupyter news?" covers the outputs
  of a first start, and the answer would make JupyterLab call a website;
* execution progress in the status bar ("Executing 3/28"): Run All scrolls to the last cell, and
  the status bar is where a student still sees how far a long notebook has come;
* Markdown files open rendered (``START.md``, the homework READMEs), not in the text editor;
* widget state is not saved into notebooks (JupyterLab's default, kept explicit): a saved notebook's
  bytes stay what its cells produce (see :mod:`seminar_lib.progress`).

``python -m seminar_lib.lab_settings`` (run by ``make setup``) writes them into this environment,
keeping the other plugins' entries of an existing file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seminar_lib.files import atomic_write_text

#: plugin id → {setting: value}; every name is checked against JupyterLab's schemas by the tests.
OVERRIDES: Mapping[str, Mapping[str, Any]] = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
    "@jupyterlab/notebook-extension:tracker": {
        "kernelStatus": {"showOnStatusBar": True, "showProgress": True, "showJumpToRecentExecutionButton": False},
    },
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": {"markdown": "Markdown Preview"}},
    "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": False},
}


def overrides_path(prefix: str | Path | None = None) -> Path:
    """Where JupyterLab of the environment at ``prefix`` (default ``sys.prefix``) reads its overrides."""
    return Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def install(prefix: str | Path | None = None) -> Path:
    """Write :data:`OVERRIDES` into the environment's ``overrides.json`` (atomically; the entries of
    other plugins already there are kept, ours replace theirs). Returns the file."""
    path = overrides_path(prefix)
    current: dict[str, Any] = {}
    if path.is_file():
        try:
            current = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path} is not valid JSON ({e}); fix or delete it, then run this again") from e
        if not isinstance(current, dict):
            raise ValueError(f"{path} must hold a JSON object of plugin settings; fix or delete it")
    current.update({plugin: dict(settings) for plugin, settings in OVERRIDES.items()})
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(current, indent=2, sort_keys=True) + "\n")
    return path


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.lab_settings", description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=None, help="the environment (default: this Python's, sys.prefix)")
    args = parser.parse_args(argv)
    print(f"JupyterLab defaults for the course written to {install(args.prefix)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
