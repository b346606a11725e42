"""The library's own source on the notebook page: :func:`show` displays a function or class as it is.

The lessons show how a model works by showing the code that runs, never a copy that could drift from it.
``show(ease_weights)`` displays the source of the object itself (``inspect.getsource``) under a caption
naming its module file and line range, highlighted as HTML (pygments) in JupyterLab, and as plain
text everywhere else (a terminal, a log, nbval's comparison of the committed outputs — the text has
no absolute path, so it is the same on every machine).
"""

from __future__ import annotations

import html
import inspect
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from seminar_lib.paths import PACKAGE_ROOT


@dataclass(frozen=True)
class Source:
    """Source lines of one object: ``code`` (dedented), where it lives (``path`` relative to the package's
    parent, e.g. ``seminar_lib/models/ease.py``) and its first and last line numbers."""

    name: str
    path: str
    first_line: int
    last_line: int
    code: str

    @property
    def caption(self) -> str:
        return f"{self.name} — {self.path}, lines {self.first_line}–{self.last_line}"

    def __repr__(self) -> str:
        return f"# {self.caption}\n{self.code}"

    def _repr_html_(self) -> str:
        formatter = HtmlFormatter(nowrap=False, cssclass="seminar-source", style="default", noclasses=True)
        body = highlight(self.code, PythonLexer(), formatter)
        return (f'<div style="font-size:0.85em;color:#555;margin-bottom:2px">{html.escape(self.caption)}</div>'
                f"{body}")


def source_of(obj: Any) -> Source:
    """The :class:`Source` of a function, method, class or module of ``seminar_lib``.

    Raises ``TypeError`` for an object without Python source (a builtin, an instance) and
    ``ValueError`` for one defined outside ``seminar_lib`` — the lessons show the course's code.

    >>> from seminar_lib.metrics.definitions import idcg
    >>> src = source_of(idcg)
    >>> src.path, src.code.splitlines()[0]
    ('seminar_lib/metrics/definitions.py', 'def idcg(k: int) -> float:')
    """
    target = inspect.unwrap(obj.fget if isinstance(obj, property) else obj)
    if inspect.isbuiltin(target) or inspect.isroutine(target) and not inspect.isfunction(target) \
            and not inspect.ismethod(target):
        raise TypeError(f"{getattr(target, '__qualname__', target)!r} has no Python source to show")
    if not (inspect.isfunction(target) or inspect.ismethod(target) or inspect.isclass(target)
            or inspect.ismodule(target)):
        raise TypeError(f"show() takes a function, method, class or module, got {type(obj).__name__}; "
                        "pass the function itself (e.g. show(ease_weights)), not the result of calling it")
    try:
        file = Path(inspect.getsourcefile(target) or "").resolve()
        lines, first = inspect.getsourcelines(target)
    except (OSError, TypeError) as error:
        raise TypeError(f"{getattr(target, '__qualname__', target)!r} has no Python source to show") from error
    if PACKAGE_ROOT not in file.parents or file.parts[len(PACKAGE_ROOT.parts)] != "seminar_lib":
        raise ValueError(f"show() displays seminar_lib's own code; {getattr(target, '__qualname__', target)!r} "
                         f"is defined in {file.name}")
    first = max(first, 1)  # a module's source starts at line 0 in inspect
    name = getattr(target, "__qualname__", getattr(target, "__name__", "module"))
    return Source(name=name, path=file.relative_to(PACKAGE_ROOT).as_posix(), first_line=first,
                  last_line=first + len(lines) - 1, code=textwrap.dedent("".join(lines)).rstrip("\n"))


def show(*objects: Any) -> Source | _Sources:
    """Display the source of each object (the last expression of a cell renders it); one object gives one
    :class:`Source`, several a list of them, displayed one after another."""
    if not objects:
        raise TypeError("show() needs at least one function or class, e.g. show(ease_weights)")
    sources = [source_of(obj) for obj in objects]
    if len(sources) == 1:
        return sources[0]
    return _Sources(sources)


class _Sources(list[Source]):
    """Several :class:`Source` blocks displayed in order."""

    def __repr__(self) -> str:
        return "\n\n".join(repr(s) for s in self)

    def _repr_html_(self) -> str:
        return "".join(s._repr_html_() for s in self)
