"""The case protocol: plain data round-trips, probes' errors are summarised, checks decide right."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from seminar_lib.grading import cases as C


def test_plain_data_round_trip_through_json_and_npz():
    value = {"a": np.arange(6, dtype=np.int64).reshape(2, 3), "b": [1, 2.5, None, "x", True],
             "c": {"d": np.array([np.nan, 1.0])}, "e": float("inf"), "t": torch.ones(2)}
    text, arrays = C.encode(value)
    back = C.decode(text, C.load_npz(C.save_npz(arrays)))
    assert np.array_equal(back["a"], value["a"]) and back["b"] == value["b"] and back["e"] == float("inf")
    assert np.isnan(back["c"]["d"][0]) and np.array_equal(back["t"], np.ones(2, dtype=np.float32))


@pytest.mark.parametrize("bad", [object(), {1: 2}, np.array(["x"], dtype=object), lambda: 0])
def test_non_plain_values_are_refused(bad):
    with pytest.raises(C.PlainDataError):
        C.to_plain({"v": bad})


def test_a_pickled_array_is_refused():
    import io
    buffer = io.BytesIO()
    np.savez(buffer, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(ValueError):
        C.load_npz(buffer.getvalue())


def harness_module() -> types.ModuleType:
    harness = types.ModuleType("harness")

    def square(solution, x):
        return {"y": solution.square(np.asarray(x))}

    harness.square = square
    return harness


def solution_module(fn) -> types.ModuleType:
    module = types.ModuleType("solution")
    module.square = fn
    return module


def test_probe_errors_are_summarised_to_type_and_first_line():
    def broken(x):
        raise ValueError("first line\nsecret second line " + "x" * 1000)

    result = C.run_probe(harness_module(), solution_module(broken), "square", {"x": [1, 2]})
    assert result.error == "ValueError: first line"
    assert C.run_probe(harness_module(), solution_module(broken), "nope", {}).error.startswith("the harness has no")


def test_checks_compare_with_the_reference_and_score_items():
    cases = [C.Case("square", "square[0]", "square", {"x": [1.0, 2.0]}, C.allclose("y")),
             C.Case("square", "square[1]", "square", {"x": [3.0]}, C.equal("y")),
             C.Case("literal", "literal", "square", {"x": [2.0]}, C.against({"y": [4.0]}, C.allclose("y")),
                    reference=False)]
    reference = solution_module(lambda x: x * x)
    good = C.run_cases_in_process(harness_module(), reference, cases, reference)
    assert not good.failures()
    off = C.run_cases_in_process(harness_module(), solution_module(lambda x: x * x + 1e-3), cases, reference)
    assert [o.case for o in off.failures()] == ["square[0]", "square[1]", "literal"]
    assert C.score_items({"square": 3, "literal": 1}, good.outcomes) == {"square": (3.0, ""), "literal": (1.0, "")}
    scored = C.score_items({"square": 3, "literal": 1, "missing": 2}, off.outcomes)
    assert scored["square"][0] == 0 and scored["square"][1].startswith("square[0]: y: 2 of 2 values differ")
    assert scored["missing"] == (0.0, "no case was run for this item")


def test_raises_and_satisfies():
    ok, bad = C.ProbeResult(outputs={"v": 1}), C.ProbeResult(error="ValueError: no")
    assert C.raises("ValueError")(bad, None) is None
    assert C.raises("ValueError")(ok, None) == "expected ValueError, nothing was raised"
    assert C.raises("TypeError")(bad, None) == "expected TypeError, got ValueError: no"
    assert C.satisfies(lambda o: o["v"] > 0, "v must be positive")(ok, None) is None
    assert C.satisfies(lambda o: o["v"] > 5, "v must exceed 5")(ok, None) == "v must exceed 5"
    assert C.satisfies(lambda o: True, "")(bad, None) == "raised ValueError: no"


def test_lazy_inputs_are_built_once_and_validated():
    calls = []

    def build():
        calls.append(1)
        return {"x": np.array([2.0])}

    case = C.Case("square", "lazy", "square", build, C.allclose("y"))
    reference = solution_module(lambda x: x * x)
    assert not C.run_cases_in_process(harness_module(), reference, [case, case], reference).failures()
    assert len(calls) == 1
    with pytest.raises(C.PlainDataError):
        C.Case("i", "bad", "square", lambda: {"x": object()}, C.allclose("y")).resolved_inputs()


def test_a_measured_verdict_carries_its_value_to_the_outcome():
    def bar(result, reference):
        value = float(result.outputs["y"][0])
        return C.Measured(value, None if value > 5 else f"{value:.1f} is below the bar 5")

    case = C.Case("board", "board", "square", {"x": [3.0]}, bar, reference=False)
    [passed] = C.run_cases_in_process(harness_module(), solution_module(lambda x: x * x), [case]).outcomes
    [failed] = C.run_cases_in_process(harness_module(), solution_module(lambda x: x), [case]).outcomes
    assert (passed.passed, passed.value) == (True, 9.0)
    assert (failed.passed, failed.value, failed.reason) == (False, 3.0, "3.0 is below the bar 5")
