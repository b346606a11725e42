"""The committed notebooks: clean, parameterised, and their recorded metrics as expected.

Execution is checked by nbval (``make test`` runs it after this suite): it re-executes every
committed notebook and compares the outputs — including the recorded-metrics JSON, rounded to 4
decimals — with the committed ones. So here we check, without executing again, that the committed
outputs themselves are right: values within the tolerances of ``expected.toml``, the orderings the
lessons claim, and metric invariants. One slow test runs a notebook through papermill with
non-default parameters, the way the instructor's runner does.
"""

from __future__ import annotations

import ast
import json
import math
import tomllib
from pathlib import Path

import pytest

from seminar_lib.course import NOTEBOOKS_DIR, execute_notebook, list_notebooks
from seminar_lib.record import read_recorded_metrics

NOTEBOOKS = list_notebooks()
EXPECTED = tomllib.loads((Path(__file__).parent / "expected.toml").read_text())
SMOKE_DEFAULTS = {"DATASET": "ml-100k", "PROFILE": "smoke", "DEVICE": "auto", "SEED": 42, "K": 10}
BOUNDED = ("hit_rate", "precision", "recall", "ndcg", "map", "mrr", "coverage", "serendipity", "intersection")
ids = [p.stem for p in NOTEBOOKS]


def load_nb(path: Path) -> dict:
    return json.loads(path.read_text())


def parameters_cell(nb: dict) -> dict:
    cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    tree = ast.parse("".join(cells[0]["source"]))
    values = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "the parameters cell holds assignments only"
        name = node.targets[0].id
        assert name.isupper(), f"parameter {name} must be UPPER_CASE"
        values[name] = ast.literal_eval(node.value)
    return values


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOKS_DIR}"
    assert set(EXPECTED) - {"orderings"} == set(ids), "expected.toml must cover exactly the committed notebooks"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_notebook_is_clean(path):
    nb = load_nb(path)
    assert "papermill" not in nb["metadata"], "regenerate with `make notebooks` (it strips papermill metadata)"
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1)), "outputs of one clean run, in order"
    for cell in code:
        assert "papermill" not in cell["metadata"] and "execution" not in cell["metadata"]
        for out in cell["outputs"]:
            assert out["output_type"] != "error", f"error output in {path.name}"
            assert not (out["output_type"] == "stream" and out["name"] == "stderr"), \
                f"stderr output in {path.name}: {''.join(out['text'])[:200]}"
    assert "record_metrics(" in "".join(code[-1]["source"]), "the last cell records the metrics"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_parameters_cell_holds_the_smoke_defaults(path):
    params = parameters_cell(load_nb(path))
    for name, value in SMOKE_DEFAULTS.items():
        assert params.get(name) == value, f"{name} must default to {value!r}"
    extra = {n: v for n, v in params.items() if n not in SMOKE_DEFAULTS}
    assert all(v is None for v in extra.values()), f"model overrides must default to None: {extra}"
    first_code = next(i for i, c in enumerate(load_nb(path)["cells"]) if c["cell_type"] == "code")
    params_index = next(i for i, c in enumerate(load_nb(path)["cells"])
                        if "parameters" in c.get("metadata", {}).get("tags", []))
    code_between = [c for c in load_nb(path)["cells"][first_code + 1:params_index] if c["cell_type"] == "code"]
    assert not code_between, "the parameters cell is the first code cell after the imports"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_recorded_metrics_match_expected(path):
    recorded = read_recorded_metrics(path)
    assert recorded["notebook"] == path.stem
    metrics = recorded["metrics"]
    for key, spec in EXPECTED[path.stem].items():
        model, metric = key.split(".", 1)
        assert model in metrics and metric in metrics[model], f"{key} was not recorded"
        value = metrics[model][metric]
        tol = spec["abs"]
        assert tol <= 0.1 * abs(spec["value"]) or spec["value"] == 0, f"{key}: tolerance wider than 10 % of the value"
        assert value == pytest.approx(spec["value"], abs=tol), key


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_recorded_metric_invariants(path):
    for model, values in read_recorded_metrics(path)["metrics"].items():
        for name, value in values.items():
            if value is None or not name.startswith(BOUNDED):
                continue
            assert 0.0 <= value <= 1.0, f"{model} {name} = {value}"
        for metric in ("recall", "hit_rate", "dcg"):  # nDCG may fall with k: its IDCG counts all k positions
            at = {int(n.split("@")[1]): v for n, v in values.items() if n.startswith(f"{metric}@") and v is not None}
            ks = sorted(at)
            assert all(at[a] <= at[b] + 1e-9 for a, b in zip(ks, ks[1:])), f"{model} {metric} must grow with k"


@pytest.mark.parametrize("rule", EXPECTED.get("orderings", []), ids=lambda r: f"{r['better']}>{r['worse']}")
def test_orderings_the_lessons_claim(rule):
    metrics = read_recorded_metrics(NOTEBOOKS_DIR / f"{rule['notebook']}.ipynb")["metrics"]
    better, worse = metrics[rule["better"]][rule["metric"]], metrics[rule["worse"]][rule["metric"]]
    factor = rule.get("factor", 1.0)
    assert better > factor * worse, f"{rule['better']} {better} vs {rule['worse']} {worse} ({rule['metric']})"


@pytest.mark.slow
@pytest.mark.notebooks
def test_a_notebook_runs_with_other_parameters(tmp_path):
    """The instructor's path: papermill with injected parameters (another dataset and k) and a run folder."""
    src = NOTEBOOKS[0]
    out = execute_notebook(src, tmp_path / src.name, {"DATASET": "synthetic", "K": 5}, run_dir=tmp_path)
    recorded = read_recorded_metrics(out)
    saved = json.loads((tmp_path / f"{src.stem}.metrics.json").read_text())
    assert set(saved["metrics"]) == set(recorded["metrics"])
    some_model = next(iter(recorded["metrics"].values()))
    assert any(name.endswith("@5") for name in some_model)
    assert all(math.isfinite(v) for v in saved["metrics"]["TopPopular"].values())
    with pytest.raises(ValueError, match="has no parameter"):
        execute_notebook(src, tmp_path / "x.ipynb", {"EPOCHZ": 3})
