"""Homework 2 (improve the DSSM) and the grader: full automatic marks for the reference, zero with
reasons for the untouched template, points part by part for a partial submission, and the
assignment's files kept consistent with each other."""

from __future__ import annotations

import ast
import json
import tomllib
from pathlib import Path

import pytest

from seminar_lib.grade import HOMEWORK_DIR, grade, main
from seminar_lib.record import read_recorded_metrics

HW2 = HOMEWORK_DIR / "hw2_dssm"
REFERENCE = HW2 / "private" / "reference"
TEMPLATE = HW2 / "template"
SPEC = tomllib.loads((HW2 / "assignment.toml").read_text())
AUTOMATIC = {"notebook_runs", "notebook_reproducible", *SPEC["points"]["tests"]}


def items(report) -> dict[str, tuple[float, str]]:
    return {i.name: (i.earned, i.reason) for i in report.items}


# ------------------------------------------------------------------------------------ grading runs
@pytest.mark.slow
def test_reference_solution_gets_full_automatic_marks(tmp_path):
    code = main([str(REFERENCE), "--assignment", "hw2_dssm", "--report", str(tmp_path)])
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    automatic = [i for i in report["items"] if not i["manual"]]
    assert {i["name"] for i in automatic} == AUTOMATIC
    assert all(i["earned"] == i["points"] for i in automatic), [i for i in automatic if i["earned"] != i["points"]]
    assert sum(i["earned"] for i in automatic) == 31
    assert report["earned"] == report["total"] == 25  # 31 automatic points, capped at the assignment's 25
    manual = {i["name"]: i for i in report["items"] if i["manual"]}
    assert set(manual) == set(SPEC["manual"]) and report["pending_manual_review"] == 24
    assert all(i["earned"] == 0 and "reviewed" in i["reason"] for i in manual.values())
    assert report["seconds"] < 120  # a submission is graded in under 2 minutes (measured: ≈ 85 s)
    text = (tmp_path / "report.md").read_text()
    assert "25 / 25 points (+ up to 0 after manual review)" in text
    assert "| test_leaderboard | 8 | 8 | ok |" in text and "| transformer_or_rnn_towers | 5 | manual |" in text


@pytest.mark.slow
def test_the_untouched_template_scores_zero_with_reasons():
    report = grade(TEMPLATE, "hw2_dssm")
    got = items(report)
    assert set(got) == AUTOMATIC | set(SPEC["manual"])
    assert report.earned == 0 and report.pending == 24
    assert "NotImplementedError" in got["notebook_runs"][1]
    assert "not reproducible" in got["notebook_reproducible"][1]
    for name in SPEC["points"]["tests"]:
        assert got[name][0] == 0 and "NotImplementedError" in got[name][1], (name, got[name])


@pytest.mark.slow
def test_a_partial_submission_scores_part_by_part(tmp_path):
    """The reference with three parts replaced: the library's BPR as "another" loss, an exact search as
    the ANN index, no leaderboard model — and no notebook."""
    overrides = '''

def pairwise_loss(pos, neg):
    from seminar_lib.models.dssm import bpr_loss
    return bpr_loss(pos, neg)


class AnnIndex:
    def __init__(self, item_vectors, ids):
        self.x = F.normalize(torch.as_tensor(np.asarray(item_vectors, dtype=np.float32)), dim=1)
        self.ids = np.asarray(ids)

    def search(self, queries, k=10):
        q = F.normalize(torch.as_tensor(np.asarray(queries, dtype=np.float32)), dim=1)
        top = torch.topk(q @ self.x.T, k, dim=1)
        self.candidates_examined = np.full(len(q), len(self.x))
        return top.values.numpy(), self.ids[top.indices.numpy()]


def make_model(users, items):
    raise NotImplementedError
'''
    (tmp_path / "solution.py").write_text((REFERENCE / "solution.py").read_text() + overrides)
    report = grade(tmp_path, "hw2_dssm")
    got = items(report)
    assert "missing file: hw2_dssm.ipynb" in got["notebook_runs"][1]
    assert got["test_pairwise_loss"] == (0, got["test_pairwise_loss"][1])
    assert "library's bpr_loss" in got["test_pairwise_loss"][1]
    assert got["test_dssm_trains_with_pairwise_loss"][0] == 1  # BPR trains, it just is not new
    assert got["test_ann_results"][0] == 3  # exact search answers correctly ...
    assert got["test_ann_recall"][0] == 0 and "100.0% of the catalogue" in got["test_ann_recall"][1]  # ... at full cost
    assert got["test_leaderboard"][0] == 0 and "NotImplementedError" in got["test_leaderboard"][1]
    for name in ("test_feature_embedding", "test_dssm_with_feature_embedding", "test_make_tower",
                 "test_dssm_with_tower"):
        assert got[name][0] == SPEC["points"]["tests"][name], (name, got[name])
    assert report.earned == 1 + 3 + 5 + 3 == 12


# ------------------------------------------------------------------------------ the assignment's files
def test_point_scheme_matches_the_hidden_tests():
    tests = ast.parse((HW2 / "private" / "tests" / "test_hw2.py").read_text())
    names = {f.name for f in tests.body if isinstance(f, ast.FunctionDef) and f.name.startswith("test_")}
    assert set(SPEC["points"]["tests"]) == names  # every hidden test is scored, every scored test exists
    automatic = sum(SPEC["points"]["tests"].values()) + SPEC["points"]["notebook_runs"] \
        + SPEC["points"]["notebook_reproducible"]
    assert automatic == 31 and sum(SPEC["manual"].values()) == 24 and SPEC["max_points"] == 25
    readme = (HW2 / "README.md").read_text()
    assert "(25 points)" in readme and "31 of the points" in readme and "other 24" in readme


def public_api(path: Path) -> dict[str, list[str]]:
    """Top-level public functions and classes of a module: their argument names (a class: its ``__init__``'s)."""
    api = {}
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
            api[node.name] = [a.arg for a in node.args.args]
        elif isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            init = next((f for f in node.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"), None)
            api[node.name] = [a.arg for a in init.args.args] if init else []
    return api


def test_template_and_reference_have_the_same_interface():
    template, reference = public_api(TEMPLATE / "solution.py"), public_api(REFERENCE / "solution.py")
    assert set(template) == {"pairwise_loss", "FeatureEmbedding", "make_tower", "AnnIndex", "make_model"}
    for name, args in template.items():
        assert reference[name][: len(args)] == args, name  # the reference may add keyword options


def test_reference_notebook_is_the_template_executed():
    template = json.loads((TEMPLATE / "hw2_dssm.ipynb").read_text())["cells"]
    reference = json.loads((REFERENCE / "hw2_dssm.ipynb").read_text())["cells"]
    assert [c["source"] for c in template[:-1]] == [c["source"] for c in reference[:-1]]
    assert template[-1]["cell_type"] == reference[-1]["cell_type"] == "markdown"  # the explanation, filled in
    assert "What I changed and why" in "".join(reference[-1]["source"])
    assert all(not c.get("outputs") for c in template if c["cell_type"] == "code")
    code = [c for c in reference if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in code] == list(range(1, len(code) + 1))  # one clean run, top to bottom
    assert not any(o["output_type"] == "error" or o.get("name") == "stderr" for c in code for o in c["outputs"])
    assert "parameters" in template[2]["metadata"].get("tags", [])
    recorded = read_recorded_metrics(REFERENCE / "hw2_dssm.ipynb")["metrics"]
    assert recorded["my model"]["ndcg@10"] > recorded["ALS"]["ndcg@10"] == 0.2087  # the leaderboard's bar
