"""Helpers of the grading-engine tests (paths, the project fingerprint, report lookups)."""

from __future__ import annotations

import hashlib
import os
import re
import sys
import textwrap
from pathlib import Path

from seminar_lib.grading.grader import HOMEWORK_DIR, ROOT
from seminar_lib.grading.sandbox import bwrap_works, unshare_works

FIXTURES = Path(__file__).parent / "fixtures"
TINY_HOMEWORK = FIXTURES / "homework"
TINY = TINY_HOMEWORK / "tiny"
HW1 = HOMEWORK_DIR / "hw1_metrics_knn"
BROKEN = ROOT / "tests" / "fixtures" / "submissions" / "hw1_metrics_knn"
REFERENCE = (HW1 / "private" / "reference" / "solution.py").read_text()
TEMPLATE = (HW1 / "template" / "solution.py").read_text()
MARKER = "grading-attack-marker"  # in the command line of every process an attack leaves behind
SKIP_PARTS = {".venv", "__pycache__", ".pytest_cache", "runs", ".ipynb_checkpoints"}


def sandbox_kinds() -> list[str]:
    """The sandboxes this machine has (CI installs bubblewrap; the unshare fallback is tested too)."""
    return [k for k, works in (("bwrap", bwrap_works()), ("unshare", unshare_works())) if works]


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fingerprint(root: Path = ROOT) -> dict[str, str]:
    """Every file of the project (homework with private/, the library, grades/, tests) by content, plus the
    venv's site-packages listing and its .pth files — what no stage of a grading may change. The git-ignored
    ``work/`` (students' copies; the browser test writes there at the same time) is read-only to stages like
    the rest of the project, and left out here."""
    state: dict[str, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in SKIP_PARTS and not (folder == str(root) and d == "work")]
        for name in files:
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file():
                continue
            state[str(path.relative_to(root))] = _digest(path)
    for site in Path(sys.prefix).glob("lib/python*/site-packages"):
        for entry in site.iterdir():
            key = f"venv:{entry.name}"
            state[key] = _digest(entry) if entry.suffix == ".pth" and entry.is_file() else "present"
    return state


def fast_limits(text: str, **limits: float) -> str:
    """``assignment.toml`` text with the given ``[limits]`` set."""
    for key, value in limits.items():
        text, n = re.subn(rf"(?m)^{key} = \d+", f"{key} = {value:g}", text)
        if n == 0:
            text = text.replace("[limits]\n", f"[limits]\n{key} = {value:g}\n")
    return text


def items(report) -> dict[str, tuple[float, str]]:
    """Item name → (earned, reason)."""
    return {i.name: (i.earned, i.reason) for i in report.items}


def leftover(marker: str = MARKER) -> list[str]:
    """The command lines of host processes that hold ``marker`` (what a stage must not leave running)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline and int(pid) != os.getpid():
            found.append(cmdline)
    return found


def with_prelude(solution: str, prelude: str) -> str:
    """``solution`` with ``prelude`` run at import, after its own imports."""
    head, sep, tail = solution.partition("\n\ndef ")
    return head + "\n" + textwrap.dedent(prelude) + sep + tail
