"""Progress bars: one wrapper over ``tqdm.auto``.

``TQDM_DISABLE=1`` (set by CI, nbval, the course runner and the grader) hides every bar, so
executed notebooks carry no bar output. tqdm applies that variable as the default of ``disable``,
but ``tqdm.notebook`` (what ``tqdm.auto`` picks inside Jupyter) always passes ``disable`` itself and
so ignores it; :func:`track` therefore reads the variable and passes ``disable=True`` when it is
set, and otherwise leaves ``disable`` alone so every other tqdm default still applies.

A bar is there while its loop runs and goes when the loop ends (``leave=False`` by default): what
stays on screen — and in a saved notebook — are the lines the loop prints (the trainer's epoch log).
In JupyterLab a bar is an ipywidget, displayed as an output that holds a widget view plus a
``text/plain`` fallback. Left in a saved notebook, that output breaks two things: a re-execution
under ``TQDM_DISABLE=1`` (nbval, the grader) has no such output, so the comparison fails; and
reopening the notebook shows "Error displaying widget: model not found", as JupyterLab does not save
widget state. So in a notebook :class:`Bar` displays its widget under a display id and, when it
closes without ``leave`` (finished or stopped early), replaces that output with an empty one and
closes the widget: the saved output has no data, which nbval and JupyterLab both pass over.
Comparisons still drop widget outputs (:func:`seminar_lib.notebook_outputs.strip_widget_outputs`)
for bars that stay (``leave=True``, an interrupted loop, a notebook saved mid-run).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm
from tqdm.notebook import tqdm as tqdm_notebook

T = TypeVar("T")


def bars_disabled() -> bool:
    """True when ``TQDM_DISABLE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


class Bar(tqdm):
    """``tqdm.auto``'s bar; in a notebook its output is emptied and its widget closed when it closes
    without ``leave`` (see the module docstring)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        notebook = issubclass(tqdm, tqdm_notebook) and not kwargs.get("disable")
        if notebook:
            kwargs["display"] = False  # displayed below, under a display id
        super().__init__(*args, **kwargs)
        self._handle: Any = None
        if notebook and hasattr(self, "container"):
            from IPython.display import display

            self._handle = display(self.container, display_id=True)
            self.displayed = True

    def close(self) -> None:
        super().close()
        if self._handle is not None and not self.leave:
            handle, self._handle = self._handle, None
            handle.update({}, raw=True)  # the output keeps no data: nothing to save, compare or re-render
            self.container.close()


def track(iterable: Iterable[T] | None = None, *, desc: str | None = None, total: float | None = None,
          leave: bool = False, **kwargs: Any) -> Bar:
    """A :class:`Bar` (a widget in JupyterLab, text in a terminal) that disappears when its loop ends
    (unless ``leave``); hidden under ``TQDM_DISABLE=1``."""
    if bars_disabled():
        kwargs["disable"] = True
    return Bar(iterable, desc=desc, total=total, leave=leave, **kwargs)
