"""What a ``solution.py`` must not use: an AST check (in the grader) and stubs (in the sandboxed worker).

An assignment's ``forbidden`` list names modules (``"seminar_lib.metrics"``: the module and everything
under it) and attributes (``"seminar_lib.models.ease:EASE"``, ``"seminar_lib.models.dssm:DSSM.option"``).

* :func:`find_forbidden` reads the source and reports every import, ``from … import``, dotted use through
  an imported name, or ``importlib.import_module("…")`` / ``__import__("…")`` with a literal that reaches a
  forbidden name. It cannot see names built at run time, hence:
* :func:`install_stubs`, called by the worker before it imports the submission: forbidden modules are
  replaced in ``sys.modules`` (and on their parent package) by modules whose every attribute raises,
  further imports of them raise ``ImportError``, and forbidden attributes are replaced by a stub that
  raises when called or used.
"""

from __future__ import annotations

import ast
import importlib
import importlib.abc
import sys
import types
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


class ForbiddenError(ImportError):
    """The submission reached something the assignment asks the student to write."""


@dataclass(frozen=True)
class Rule:
    module: str
    attr: str = ""  # dotted attribute path inside the module; "" = the whole module

    @classmethod
    def parse(cls, text: str) -> Rule:
        module, _, attr = text.partition(":")
        return cls(module.strip(), attr.strip())

    @property
    def dotted(self) -> str:
        return f"{self.module}.{self.attr}" if self.attr else self.module

    def matches(self, dotted: str) -> bool:
        """Whether the fully qualified ``dotted`` name is (inside) what this rule forbids."""
        return dotted == self.dotted or dotted.startswith(self.dotted + ".")


def _literal(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _dotted(node: ast.AST) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return [node.id, *reversed(parts)]
    return None


def find_forbidden(source: str, rules: Sequence[str]) -> list[str]:
    """Human-readable findings (``"line 3: imports seminar_lib.metrics"``); [] when clean or unparsable
    (a syntax error is reported by the cases stage)."""
    parsed = [Rule.parse(r) for r in rules]
    if not parsed:
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []
    aliases: dict[str, str] = {}  # local name -> fully qualified name
    found: list[str] = []

    def hit(dotted: str, line: int, what: str) -> None:
        for rule in parsed:
            # importing a module that contains a forbidden attribute is fine; reaching the attribute is not
            if rule.matches(dotted) or (not rule.attr and dotted.startswith(rule.module + ".")):
                found.append(f"line {line}: {what} {dotted} (forbidden: {rule.dotted})")
                return

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                hit(a.name, node.lineno, "imports")
                aliases[(a.asname or a.name).split(".")[0]] = a.name if a.asname else a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                full = f"{node.module}.{a.name}"
                hit(node.module, node.lineno, "imports")
                hit(full, node.lineno, "imports")
                aliases[a.asname or a.name] = full
        elif isinstance(node, ast.Call):
            fn = _dotted(node.func)
            if fn and fn[-1] in ("import_module", "__import__") and node.args:
                name = _literal(node.args[0])
                if name:
                    hit(name, node.lineno, "imports")
    for parent in ast.walk(tree):
        for child in ast.iter_child_nodes(parent):
            child.parent = parent  # type: ignore[attr-defined]
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and not isinstance(getattr(node, "parent", None), ast.Attribute):
            parts = _dotted(node)
            if parts and parts[0] in aliases:
                hit(".".join([aliases[parts[0]], *parts[1:]]), node.lineno, "uses")
    return sorted(set(found), key=lambda s: (int(s.split(":")[0].split()[1]), s))


class _Stub:
    """Stands for a forbidden object: calling it or reading an attribute raises :class:`ForbiddenError`."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_name", name)

    def _refuse(self) -> ForbiddenError:
        return ForbiddenError(f"{object.__getattribute__(self, '_name')} is not available in this assignment: "
                              "write it yourself")

    def __call__(self, *args: object, **kwargs: object) -> object:
        raise self._refuse()

    def __getattr__(self, attr: str) -> object:
        raise self._refuse()

    def __get__(self, obj: object, owner: object = None) -> object:
        raise self._refuse()


class _StubModule(types.ModuleType):
    def __getattr__(self, attr: str) -> object:
        raise ForbiddenError(f"{self.__name__} is not available in this assignment: write it yourself")


class _Blocker(importlib.abc.MetaPathFinder):
    def __init__(self, modules: Iterable[str]) -> None:
        self.modules = tuple(modules)

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> None:
        if any(fullname == m or fullname.startswith(m + ".") for m in self.modules):
            raise ForbiddenError(f"{fullname} is not available in this assignment: write it yourself")
        return None


def install_stubs(rules: Sequence[str]) -> None:
    """Make every forbidden module and attribute unusable in this process (the sandboxed worker)."""
    parsed = [Rule.parse(r) for r in rules]
    modules = [r.module for r in parsed if not r.attr]
    for name in [n for n in sys.modules if any(n == m or n.startswith(m + ".") for m in modules)]:
        sys.modules[name] = _StubModule(name)
    for m in modules:
        parent, _, child = m.rpartition(".")
        if parent in sys.modules and not isinstance(sys.modules[parent], _StubModule):
            setattr(sys.modules[parent], child, _StubModule(m))
    sys.meta_path.insert(0, _Blocker(modules))
    for rule in (r for r in parsed if r.attr):
        if any(rule.module == m or rule.module.startswith(m + ".") for m in modules):
            continue
        try:
            owner: object = importlib.import_module(rule.module)
            *path, last = rule.attr.split(".")
            for part in path:
                owner = getattr(owner, part)
        except (ImportError, AttributeError):
            continue  # nothing to hide: the name does not exist
        try:
            setattr(owner, last, _Stub(rule.dotted))
        except (AttributeError, TypeError):
            pass
