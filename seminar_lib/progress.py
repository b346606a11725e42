"""Progress bars: one wrapper over ``tqdm.auto``.

``TQDM_DISABLE=1`` (set by CI, nbval, the course runner and the grader) hides every bar, so
executed notebooks carry no bar output. tqdm applies that variable as the default of ``disable``,
but ``tqdm.notebook`` (what ``tqdm.auto`` picks inside Jupyter) always passes ``disable`` itself and
so ignores it; :func:`track` therefore reads the variable and passes ``disable=True`` when it is
set, and otherwise leaves ``disable`` alone so every other tqdm default still applies.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bars_disabled() -> bool:
    """True when ``TQDM_DISABLE`` is set to a true value (``1``, ``true``, ``yes``)."""
    return os.environ.get("TQDM_DISABLE", "").strip().lower() in {"1", "true", "yes", "on"}


def track(iterable: Iterable[T] | None = None, *, desc: str | None = None, total: float | None = None, **kwargs: Any) -> tqdm:
    """A ``tqdm.auto`` bar (a widget in JupyterLab, text in a terminal); hidden under ``TQDM_DISABLE=1``."""
    if bars_disabled():
        kwargs["disable"] = True
    return tqdm(iterable, desc=desc, total=total, **kwargs)
