"""``show``: the library's own source on the page, the same text on every machine."""

from __future__ import annotations

import inspect

import pytest

from seminar_lib.metrics.definitions import idcg
from seminar_lib.models import EASE
from seminar_lib.source import Source, show, source_of


def test_source_is_the_objects_own_code_with_its_place():
    src = source_of(idcg)
    lines, first = inspect.getsourcelines(idcg)
    assert src.code == "".join(lines).rstrip("\n")
    assert (src.path, src.first_line, src.last_line) == ("seminar_lib/metrics/definitions.py", first,
                                                         first + len(lines) - 1)
    assert repr(src).splitlines()[0] == f"# idcg — seminar_lib/metrics/definitions.py, lines {first}–{src.last_line}"
    assert "/" not in repr(src).splitlines()[0].split("—")[0]  # no absolute path in the text nbval compares


def test_methods_are_dedented_and_html_is_highlighted():
    src = show(EASE._fit)
    assert isinstance(src, Source) and src.code.startswith("def _fit(")
    page = src._repr_html_()
    assert "EASE._fit" in page and "<span" in page and "def" in page


def test_several_objects_display_in_order():
    both = show(idcg, EASE._fit)
    assert [s.name for s in both] == ["idcg", "EASE._fit"]
    assert repr(both).index("# idcg") < repr(both).index("# EASE._fit")
    assert both._repr_html_().index("idcg") < both._repr_html_().index("EASE._fit")


def test_bad_objects_are_refused_with_a_reason():
    with pytest.raises(TypeError, match="not the result of calling it"):
        show(idcg(3))
    with pytest.raises(TypeError, match="no Python source"):
        show(len)
    with pytest.raises(ValueError, match="seminar_lib's own code"):
        show(inspect.getsource)
    with pytest.raises(TypeError, match="at least one"):
        show()
