"""What a ``solution.py`` must not use: an AST check (in the grader) and stubs (in the sandboxed worker).

An assignment's ``forbidden`` list names modules (``"seminar_lib.metrics"``: the module and everything
under it) and attributes (``"seminar_lib.models.ease:EASE"``, ``"seminar_lib.models.two_tower:DSSM.option"``).

* :func:`find_forbidden` reads the source and reports every import, ``from … import``, dotted use through
  an imported name, or ``importlib.import_module("…")`` / ``__import__("…")`` with a literal that reaches a
  forbidden name. It cannot see names built at run time, hence:
* :func:`install_stubs`, called by the worker before it imports the submission: forbidden modules are
  replaced in ``sys.modules`` (and on their parent package) by modules whose every attribute raises, and
  further imports of them raise ``ImportError``;
* :func:`guarded_builtins`: the builtins the submission's ``solution.py`` runs with, whose ``__import__``
  hands it modules that refuse forbidden attributes (``from seminar_lib.models.two_tower import Tower``,
  ``dssm.Tower``). The library itself keeps the real attributes, so its own code (the DSSM building its
  default tower) still works. A dotted attribute (``DSSM.option``) is left to the AST check.
"""

from __future__ import annotations

import ast
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
    """Make every forbidden *module* unusable in this process (the sandboxed worker)."""
    modules = [r.module for r in map(Rule.parse, rules) if not r.attr]
    for name in [n for n in sys.modules if any(n == m or n.startswith(m + ".") for m in modules)]:
        sys.modules[name] = _StubModule(name)
    for m in modules:
        parent, _, child = m.rpartition(".")
        if parent in sys.modules and not isinstance(sys.modules[parent], _StubModule):
            setattr(sys.modules[parent], child, _StubModule(m))
    sys.meta_path.insert(0, _Blocker(modules))


class _GuardedModule(types.ModuleType):
    """A view of ``module`` that refuses the forbidden attributes (and guards the submodules it leads to)."""

    def __init__(self, module: types.ModuleType, hidden: dict[str, set[str]]) -> None:
        super().__init__(module.__name__)
        object.__setattr__(self, "_guarded", (module, hidden))

    def __getattribute__(self, attr: str) -> object:
        module, hidden = object.__getattribute__(self, "_guarded")
        if attr in hidden.get(module.__name__, ()):
            raise ForbiddenError(f"{module.__name__}.{attr} is not available in this assignment: write it yourself")
        return _guard(getattr(module, attr), hidden)


def _guard(value: object, hidden: dict[str, set[str]]) -> object:
    if isinstance(value, types.ModuleType) and not isinstance(value, _GuardedModule):
        if any(m == value.__name__ or m.startswith(value.__name__ + ".") for m in hidden):
            return _GuardedModule(value, hidden)
    return value


def guarded_builtins(rules: Sequence[str]) -> dict[str, object]:
    """Builtins for the submission's module: ``__import__`` returns guarded views of the modules that hold
    forbidden attributes (``module:attr`` rules with a plain ``attr``)."""
    import builtins

    hidden: dict[str, set[str]] = {}
    for rule in map(Rule.parse, rules):
        if rule.attr and "." not in rule.attr:
            hidden.setdefault(rule.module, set()).add(rule.attr)
    real_import = builtins.__import__

    def guarded_import(name: str, globals: object = None, locals: object = None, fromlist: Sequence[str] = (),
                       level: int = 0) -> object:
        return _guard(real_import(name, globals, locals, fromlist, level), hidden)

    return {**builtins.__dict__, "__import__": guarded_import}
