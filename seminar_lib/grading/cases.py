"""What the grader asks a submission, and how it checks the answer: cases, probes, checks, plain data.

A homework ``homework/<name>/`` has a public ``harness.py`` of *probes*: functions

    probe(solution: types.ModuleType, **inputs) -> dict[str, Any]

that call the student's code (``solution`` is the imported ``solution.py``) and return *plain data*.
A :class:`Case` names a probe, the inputs it is called with, and a *check*. The grader runs the
probe twice on the same inputs — with the submission inside the sandboxed worker, and with the private
reference solution — and the check compares the two results in the grader's own process. Nothing a
submission prints or writes is read, only the probe's returned value, which is decoded from JSON and
``.npz`` (never pickle) and validated by :func:`to_plain`. A check cannot be satisfied by forging the
result, because the reference values of hidden inputs are never in the sandbox.

Plain data is: ``None``, ``bool``, ``int``, ``float``, ``str``, lists / tuples of plain data, dicts with
``str`` keys, and numpy arrays of bool, integer or floating dtype (no object arrays). Torch tensors
returned by a probe are converted to numpy by :func:`to_plain`.

The cases live in ``homework/<name>/public_cases.py`` (what a student may run before submitting) and
``homework/<name>/private/cases.py`` (the hidden ones); each module defines ``CASES: list[Case]``.
"""

from __future__ import annotations

import importlib.util
import io
import json
import math
import sys
import time
import traceback
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

MAX_REASON = 240  # characters of a failure reason or an exception summary
MAX_DEPTH = 8  # nesting of lists / dicts in plain data


class PlainDataError(ValueError):
    """A probe's inputs or outputs are not plain data (see the module docstring)."""


@dataclass(frozen=True)
class ProbeResult:
    """What one probe call gave: its outputs, or the summary of the exception it raised (``error``)."""

    outputs: dict[str, Any] | None = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Measured:
    """A check's verdict together with the number it measured (e.g. a leaderboard's nDCG@10):
    ``reason`` None means passed. The value reaches :attr:`Outcome.value`, the report and the class leaderboard."""

    value: float
    reason: str | None = None


# A check returns None when the submission's result is right, else the reason (short, no hidden source),
# or a Measured verdict that also carries the value it measured.
Check = Callable[[ProbeResult, "ProbeResult | None"], "str | Measured | None"]


@dataclass(frozen=True)
class Case:
    """One question to a submission.

    ``item`` is the point-scheme item (``[points.cases]`` of ``assignment.toml``) the case counts for: an item
    earns its points only if every one of its cases passes. ``name`` is unique within a cases module.
    ``reference``: whether :attr:`check` needs the reference solution's result (False for checks on the
    submission's result alone, such as a quality bar the grader computes itself). ``inputs`` may be a
    function returning them, for inputs that are expensive to build (called once, in the grader's process,
    only when the case runs); see :meth:`resolved_inputs`.
    """

    item: str
    name: str
    probe: str
    inputs: Mapping[str, Any] | Callable[[], Mapping[str, Any]]
    check: Check
    reference: bool = True
    timeout: float | None = None  # seconds; None: the assignment's case_timeout


    def resolved_inputs(self) -> dict[str, Any]:
        """The inputs as plain data (calling :attr:`inputs` if it is a function; cached per case object)."""
        cached = _RESOLVED.get(id(self))
        if cached is None or cached[0] is not self:
            raw = self.inputs() if callable(self.inputs) else self.inputs
            cached = (self, to_plain(dict(raw)))
            _RESOLVED[id(self)] = cached
        return cached[1]


_RESOLVED: dict[int, tuple[Case, dict[str, Any]]] = {}


@dataclass(frozen=True)
class Outcome:
    """A checked case: passed or the reason it did not."""

    case: str
    item: str
    passed: bool
    reason: str = ""
    seconds: float = 0.0
    value: float | None = None  # what a Measured check measured


# ---------------------------------------------------------------------------------------------- plain data


def to_plain(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain data (tensors and numpy scalars converted), or :class:`PlainDataError`."""
    if _depth > MAX_DEPTH:
        raise PlainDataError(f"nested deeper than {MAX_DEPTH} levels")
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if isinstance(value, np.generic):
        return to_plain(value.item(), _depth)
    if type(value).__module__.startswith("torch") and hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            raise PlainDataError(f"an array of dtype {value.dtype} (only bool, integer and float arrays are plain)")
        return np.ascontiguousarray(value)
    if isinstance(value, (list, tuple)):
        return [to_plain(v, _depth + 1) for v in value]
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise PlainDataError("a dict with non-string keys")
        return {k: to_plain(v, _depth + 1) for k, v in value.items()}
    raise PlainDataError(f"a value of type {type(value).__name__}")


def encode(value: Any) -> tuple[str, dict[str, np.ndarray]]:
    """Plain data → (JSON text, arrays): each array becomes ``{"__array__": "a<i>"}`` in the JSON."""
    arrays: dict[str, np.ndarray] = {}

    def walk(v: Any) -> Any:
        if isinstance(v, np.ndarray):
            key = f"a{len(arrays)}"
            arrays[key] = v
            return {"__array__": key}
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            if "__array__" in v:
                raise PlainDataError("the key '__array__' is reserved")
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, float) and not math.isfinite(v):
            return {"__float__": repr(v)}
        return v

    return json.dumps(walk(to_plain(value)), allow_nan=False), arrays


def decode(text: str, arrays: Mapping[str, np.ndarray]) -> Any:
    """Inverse of :func:`encode`; the result is validated with :func:`to_plain`."""

    def walk(v: Any) -> Any:
        if isinstance(v, dict):
            if set(v) == {"__array__"}:
                key = v["__array__"]
                if key not in arrays:
                    raise PlainDataError(f"array {key!r} is missing")
                return arrays[key]
            if set(v) == {"__float__"}:
                return float(v["__float__"])
            return {k: walk(x) for k, x in v.items()}
        if isinstance(v, list):
            return [walk(x) for x in v]
        return v

    return to_plain(walk(json.loads(text)))


def save_npz(arrays: Mapping[str, np.ndarray]) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def load_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


# ------------------------------------------------------------------------------------------- running probes


def summarize_exception(exc: BaseException) -> str:
    """``"TypeError: first line of the message"``, capped at :data:`MAX_REASON` characters."""
    lines = str(exc).strip().splitlines()
    first = lines[0] if lines else ""
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text[:MAX_REASON]


def load_module(path: Path, name: str, builtins: Mapping[str, Any] | None = None) -> types.ModuleType:
    """Import the Python file ``path`` as module ``name`` (replacing an earlier import of that name);
    ``builtins``: the module's own builtins (the worker's guarded ``__import__``)."""
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    if builtins is not None:
        module.__dict__["__builtins__"] = dict(builtins)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def run_probe(harness: types.ModuleType, solution: types.ModuleType, probe: str, inputs: Mapping[str, Any]) -> ProbeResult:
    """Call ``harness.<probe>(solution, **inputs)`` in this process; exceptions become ``error``.

    Used by the sandboxed worker for the submission, and by the grader for the (trusted) reference.
    """
    fn = getattr(harness, probe, None)
    if not callable(fn):
        return ProbeResult(error=f"the harness has no probe {probe!r}")
    start = time.perf_counter()
    try:
        outputs = fn(solution, **dict(inputs))
        if not isinstance(outputs, Mapping):
            raise PlainDataError(f"the probe returned {type(outputs).__name__}, not a dict")
        plain = to_plain(outputs)
    except Exception as exc:  # noqa: BLE001 - the student's code may raise anything
        return ProbeResult(error=summarize_exception(exc), seconds=time.perf_counter() - start)
    return ProbeResult(outputs=plain, seconds=time.perf_counter() - start)


def load_cases(path: Path) -> list[Case]:
    """``CASES`` of the cases module at ``path``, validated (unique names, :class:`Case` objects)."""
    module = load_module(path, f"_cases_{abs(hash(str(path)))}")
    cases = getattr(module, "CASES", None)
    if not isinstance(cases, list) or not all(isinstance(c, Case) for c in cases):
        raise TypeError(f"{path} must define CASES: list[Case]")
    names = [c.name for c in cases]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{path}: duplicate case names {duplicates}")
    for case in cases:
        if not callable(case.inputs):
            to_plain(dict(case.inputs))  # inputs must travel to the worker as plain data
    return cases


def check_case(case: Case, result: ProbeResult, reference: ProbeResult | None) -> Outcome:
    """Apply the case's check (in the grader's process); a failing check's reason is capped."""
    if case.reference and (reference is None or not reference.ok):
        why = reference.error if reference is not None else "not computed"
        raise RuntimeError(f"the reference solution fails case {case.name!r}: {why}")
    value = None
    try:
        reason = case.check(result, reference)
        if isinstance(reason, Measured):
            value, reason = float(reason.value), reason.reason
    except Exception as exc:  # noqa: BLE001 - a check on malformed outputs must not crash the grader
        reason = f"malformed result ({summarize_exception(exc)})"
    return Outcome(case.name, case.item, reason is None, (reason or "")[:MAX_REASON], result.seconds, value)


def score_items(points: Mapping[str, float], outcomes: Iterable[Outcome]) -> dict[str, tuple[float, str]]:
    """Item → (earned, reason): full points if every case of the item passed, else 0 and the first reason."""
    by_item: dict[str, list[Outcome]] = {item: [] for item in points}
    for outcome in outcomes:
        by_item.setdefault(outcome.item, []).append(outcome)
    scored = {}
    for item, value in points.items():
        got = by_item.get(item, [])
        failed = [o for o in got if not o.passed]
        if not got:
            scored[item] = (0.0, "no case was run for this item")
        elif failed:
            scored[item] = (0.0, f"{failed[0].case}: {failed[0].reason}"[:MAX_REASON])
        else:
            scored[item] = (float(value), "")
    return scored


# ------------------------------------------------------------------------------------------------- checks


def _failed(result: ProbeResult) -> str | None:
    if not result.ok:
        return f"raised {result.error}"
    return None


def _get(outputs: Mapping[str, Any] | None, key: str) -> Any:
    if outputs is None or key not in outputs:
        raise KeyError(f"no {key!r} in the result")
    return outputs[key]


def allclose(*keys: str, rtol: float = 1e-6, atol: float = 1e-9) -> Check:
    """The outputs ``keys`` equal the reference's within ``rtol`` / ``atol`` (same shapes; NaN = NaN)."""

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        if (why := _failed(result)) is not None:
            return why
        for key in keys:
            got = np.asarray(_get(result.outputs, key), dtype=np.float64)
            want = np.asarray(_get(reference.outputs if reference else None, key), dtype=np.float64)
            if got.shape != want.shape:
                return f"{key}: shape {got.shape}, expected {want.shape}"
            close = np.isclose(got, want, rtol=rtol, atol=atol, equal_nan=True)
            if not close.all():
                where = np.unravel_index(int(np.argmin(close)), close.shape) if close.ndim else ()
                return f"{key}: {int((~close).sum())} of {close.size} values differ (first at {where})"
        return None

    return check


def equal(*keys: str) -> Check:
    """The outputs ``keys`` are exactly the reference's (arrays: same shape and values; else ``==``)."""

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        if (why := _failed(result)) is not None:
            return why
        for key in keys:
            got, want = _get(result.outputs, key), _get(reference.outputs if reference else None, key)
            if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
                got, want = np.asarray(got), np.asarray(want)
                if got.shape != want.shape:
                    return f"{key}: shape {got.shape}, expected {want.shape}"
                if not np.array_equal(got, want):
                    return f"{key}: {int((got != want).sum())} of {want.size} entries differ"
            elif got != want:
                return f"{key}: not the expected value"
        return None

    return check


def raises(*exception_names: str) -> Check:
    """The probe raised one of ``exception_names`` (by class name, e.g. ``"ValueError"``)."""

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        if result.ok:
            return f"expected {' or '.join(exception_names)}, nothing was raised"
        name = result.error.split(":", 1)[0]
        if name not in exception_names:
            return f"expected {' or '.join(exception_names)}, got {result.error}"
        return None

    return check


def satisfies(predicate: Callable[[Mapping[str, Any]], bool | str | None], what: str) -> Check:
    """A custom check on the submission's outputs alone: ``predicate(outputs)`` is True (or None), else
    ``what`` (or the string it returned) is the reason. Used with ``Case(reference=False)``."""

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        if (why := _failed(result)) is not None:
            return why
        verdict = predicate(result.outputs or {})
        if verdict is True or verdict is None:
            return None
        return verdict if isinstance(verdict, str) else what

    return check


def against(expected: Mapping[str, Any], inner: Check) -> Check:
    """``inner`` applied with literal ``expected`` outputs in place of the reference's (for public cases, whose
    expected values are written in the cases file; use with ``Case(reference=False)``)."""
    literal = ProbeResult(outputs=to_plain(dict(expected)))

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        return inner(result, literal)

    return check


def all_of(*checks: Check) -> Check:
    """Every check passes; the first failing one gives the reason."""

    def check(result: ProbeResult, reference: ProbeResult | None) -> str | None:
        for c in checks:
            if (why := c(result, reference)) is not None:
                return why
        return None

    return check


@dataclass
class LocalRun:
    """The result of :func:`run_cases_in_process`: outcomes and item scores (for public checks and tests)."""

    outcomes: list[Outcome] = field(default_factory=list)

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]


def run_cases_in_process(harness: types.ModuleType, solution: types.ModuleType, cases: Sequence[Case],
                         reference: types.ModuleType | None = None) -> LocalRun:
    """Run ``cases`` against ``solution`` **in this process, unsandboxed** — only for trusted code (the
    reference solution in tests) or a student checking their own work; the grader uses the sandboxed worker.

    Without ``reference``, cases that need one are checked against nothing and are skipped.
    """
    run = LocalRun()
    for case in cases:
        if case.reference and reference is None:
            continue
        inputs = case.resolved_inputs()
        ref = run_probe(harness, reference, case.probe, inputs) if case.reference else None
        run.outcomes.append(check_case(case, run_probe(harness, solution, case.probe, inputs), ref))
    return run


def format_traceback_tail(exc: BaseException, lines: int = 3) -> str:
    """The last ``lines`` lines of a traceback (for a student's local checks, never in a grader's report)."""
    return "".join(traceback.format_exception(exc)[-lines:])
