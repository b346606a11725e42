"""The committed form of an executed notebook: :func:`normalize_notebook` (what JupyterLab writes, without
what differs between runs) and :func:`write_back` (re-execute a notebook and replace it with that form)."""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from seminar_lib import cpu_kernels
from seminar_lib.course.execute import execute_notebook
from seminar_lib.files import atomic_write_text


def normalize_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """The form JupyterLab itself writes, without what differs between runs; opening and saving the
    result in JupyterLab (with the course kernel) changes no byte.

    Dropped: papermill's metadata, execution timings, empty tags, saved widget state. Rewritten as
    JupyterLab rewrites them on open or save:

    * ``metadata.kernelspec``: the course kernel's name, display name and language
      (:data:`seminar_lib.cpu_kernels.KERNEL_NAME`, :data:`~seminar_lib.cpu_kernels.KERNEL_DISPLAY_NAME`),
      which JupyterLab copies from the kernel it starts; ``language_info`` stays as the kernel
      reported it (version included: JupyterLab writes the kernel's own);
    * consecutive ``stream`` outputs of one stream are merged into one (JupyterLab's output area does
      so when it loads them);
    * a float with an integral value inside a JSON output is written as an int (``0.0`` → ``0``:
      JavaScript has one number type and prints it without the fraction);
    * ``nbformat_minor`` at least 5, keys sorted (as ``nbformat`` writes files).
    """
    meta = nb.setdefault("metadata", {})
    meta.pop("papermill", None)
    meta.pop("widgets", None)
    meta["kernelspec"] = {"display_name": cpu_kernels.KERNEL_DISPLAY_NAME, "language": "python",
                          "name": cpu_kernels.KERNEL_NAME}
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
    for cell in nb.get("cells", []):
        cm = cell.setdefault("metadata", {})
        cm.pop("papermill", None)
        cm.pop("execution", None)
        if not cm.get("tags", True):
            cm.pop("tags")
        if cell.get("cell_type") == "code":
            cell["outputs"] = [_as_javascript_writes(o) for o in _merge_streams(cell.get("outputs", []))]
    return _sorted_keys(nb)


def _merge_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive ``stream`` outputs of the same ``name`` as one output (text lines concatenated)."""
    merged: list[dict[str, Any]] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            text = "".join(_lines(previous["text"])) + "".join(_lines(output["text"]))
            merged[-1] = {**previous, "text": text.splitlines(keepends=True)}
        else:
            merged.append(output)
    return merged


def _lines(text: str | list[str]) -> list[str]:
    return [text] if isinstance(text, str) else list(text)


def _as_javascript_writes(value: Any) -> Any:
    """``value`` with every integral float (within JavaScript's exact integers, 2**53) as an int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _as_javascript_writes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_javascript_writes(v) for v in value]
    return value


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def write_back(path: Path, timeout: int = 1800) -> float:
    """Re-execute ``path`` with its defaults and replace it with the normalised result. Returns seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        execute_notebook(path, out, {}, timeout=timeout)
        nb = normalize_notebook(json.loads(out.read_text()))
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return time.perf_counter() - start
