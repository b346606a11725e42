"""What a saved notebook's outputs hold beyond what re-execution reproduces.

JupyterLab saves a progress bar (tqdm's ipywidgets bar) as a ``display_data`` output whose bundle holds the
widget view (``application/vnd.jupyter.widget-view+json``) and a ``text/plain`` fallback such as
``"SASRec: 0%| | 0/4"``. Re-executed with ``TQDM_DISABLE=1`` (the grader, nbval) the cell has no such
output, so comparisons drop these outputs from both sides first.

:data:`SANITIZE_CONFIG` is the course's nbval sanitizer (figure sizes, dates, durations, addresses, cache
paths, device names), shipped with the package so the grader finds it in an installed copy too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

SANITIZE_CONFIG = Path(__file__).with_name("nbval_sanitize.cfg")
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def is_widget_output(output: dict[str, Any]) -> bool:
    """True for an output whose bundle is a widget view (with or without its text fallback)."""
    return WIDGET_VIEW in (output.get("data") or {})


def strip_widget_outputs(outputs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``outputs`` without widget views (each such output goes whole, its ``text/plain`` fallback with it)."""
    return [o for o in outputs if not is_widget_output(o)]
