"""The homework cases themselves: the reference passes every public and hidden case, the untouched template
fails every case with a readable reason, and a plausible wrong solution fails the case aimed at it.

Everything runs in this process (``run_cases_in_process``): these tests check the cases, not the sandbox.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp

from seminar_lib.grading.cases import MAX_REASON, load_cases, load_module, run_cases_in_process
from seminar_lib.grading.public import assignment_dir, assignment_module, check, format_run

HW1 = "hw1_metrics_knn"


def parts(assignment: str) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType, list, list]:
    folder = assignment_dir(assignment)
    harness = assignment_module(assignment, "harness.py")
    reference = load_module(folder / "private" / "reference" / "solution.py", f"_{assignment}_reference")
    template = load_module(folder / "template" / "solution.py", f"_{assignment}_template")
    return (harness, reference, template, load_cases(folder / "public_cases.py"),
            load_cases(folder / "private" / "cases.py"))


@pytest.fixture(scope="module")
def hw1():
    return parts(HW1)


def variant(assignment: str, **replace: Callable) -> types.ModuleType:
    """The reference solution with some functions replaced (a plausible wrong submission)."""
    module = load_module(assignment_dir(assignment) / "private" / "reference" / "solution.py",
                         f"_{assignment}_variant_{'_'.join(replace)}")
    for name, fn in replace.items():
        setattr(module, name, fn)
    return module


def failed_items(run) -> set[str]:
    return {o.item for o in run.failures()}


def test_hw1_reference_passes_every_public_and_hidden_case(hw1):
    harness, reference, _, public, hidden = hw1
    run = run_cases_in_process(harness, reference, public + hidden, reference)
    assert len(run.outcomes) == len(public) + len(hidden)
    assert not run.failures(), [(o.case, o.reason) for o in run.failures()]


def test_hw1_template_fails_every_case_with_a_readable_reason(hw1):
    harness, reference, template, public, hidden = hw1
    run = run_cases_in_process(harness, template, public + hidden, reference)
    assert len(run.failures()) == len(run.outcomes) == len(public) + len(hidden)
    for outcome in run.outcomes:
        assert "NotImplementedError" in outcome.reason and len(outcome.reason) <= MAX_REASON
        assert "Traceback" not in outcome.reason


def test_hw1_every_point_item_has_public_and_hidden_cases(hw1):
    import tomllib
    items = set(tomllib.loads((assignment_dir(HW1) / "assignment.toml").read_text())["points"]["cases"])
    _, _, _, public, hidden = hw1
    assert {c.item for c in hidden} == items
    assert {c.item for c in public} <= items and len({c.item for c in public}) >= 5


# ---- plausible wrong solutions, each failing the item it gets wrong (and only that one among the metrics)

def _binary_ndcg(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """nDCG with the ideal over all k positions (the library's convention), not the user's achievable ideal."""
    from seminar_lib.metrics import ndcg
    return ndcg(recos, test.select("user_id", "item_id"), k)


def _ndcg_duplicates_summed(recos, test, k):
    from_ref = variant(HW1)
    doubled = test.group_by("user_id", "item_id").agg(pl.col("rating").sum())
    return from_ref.graded_ndcg_at_k(recos, doubled, k)


def _ild_with_single_lists(recos, item_vectors, k):
    """Counts users with one item as diversity 0 instead of leaving them out."""
    ref = variant(HW1)
    top = recos.filter(pl.col("rank") <= k).unique(["user_id", "item_id"])
    n_multi = top.group_by("user_id").len().filter(pl.col("len") >= 2).height
    n_all = top["user_id"].n_unique()
    return ref.intra_list_diversity(recos, item_vectors, k) * n_multi / n_all


def _auc_ties_lost(scores, train, test):
    """Counts a tie as a loss instead of one half."""
    ref = variant(HW1)
    jitter = np.asarray(scores, dtype=np.float64) - 1e-9 * (np.asarray(test.toarray()) > 0)
    return ref.mean_auc(jitter, train, test)


def _auc_seen_as_negatives(scores, train, test):
    ref = variant(HW1)
    return ref.mean_auc(scores, sp.csr_matrix(train.shape), test - test.multiply(train))


def _knn_no_shrinkage(X, n_neighbours, shrinkage):
    return variant(HW1).itemknn_similarity(X, n_neighbours, 0.0)


def _knn_pruned_by_column(X, n_neighbours, shrinkage):
    return sp.csr_matrix(variant(HW1).itemknn_similarity(X, n_neighbours, shrinkage).T)


def _recommend_seen_kept(S, X, k):
    ref = variant(HW1)
    return ref.itemknn_recommend(S, sp.csr_matrix(X.shape), k)


def _recommend_ties_high(S, X, k):
    """Breaks ties towards the higher index (reversing the catalogue)."""
    ref = variant(HW1)
    n = S.shape[0]
    flip = sp.csr_matrix((np.ones(n), (np.arange(n), np.arange(n)[::-1])), shape=(n, n))
    top = ref.itemknn_recommend(flip @ S @ flip, X @ flip, k)
    return np.where(top >= 0, n - 1 - top, -1)


@pytest.mark.parametrize(("function", "wrong", "item"), [
    ("graded_ndcg_at_k", _binary_ndcg, "graded_ndcg"),
    ("graded_ndcg_at_k", _ndcg_duplicates_summed, "graded_ndcg"),
    ("intra_list_diversity", _ild_with_single_lists, "intra_list_diversity"),
    ("mean_auc", _auc_ties_lost, "mean_auc"),
    ("mean_auc", _auc_seen_as_negatives, "mean_auc"),
    ("itemknn_similarity", _knn_no_shrinkage, "itemknn_similarity"),
    ("itemknn_similarity", _knn_pruned_by_column, "itemknn_similarity"),
    ("itemknn_recommend", _recommend_seen_kept, "itemknn_recommend"),
    ("itemknn_recommend", _recommend_ties_high, "itemknn_recommend"),
])
def test_hw1_a_plausible_wrong_solution_fails_its_hidden_cases(hw1, function, wrong, item):
    harness, reference, _, _, hidden = hw1
    run = run_cases_in_process(harness, variant(HW1, **{function: wrong}), hidden, reference)
    assert item in failed_items(run)
    assert failed_items(run) <= {item, "scale", "input_validation"}


def test_public_check_prints_one_line_per_case_and_returns_the_run(capsys, tmp_path):
    reference = assignment_dir(HW1) / "private" / "reference"
    run = check(HW1, reference)
    printed = capsys.readouterr().out.splitlines()
    assert not run.failures() and len(printed) == len(run.outcomes) + 1
    assert printed[-1] == f"{len(run.outcomes)} of {len(run.outcomes)} public cases pass"
    assert all(line.startswith("PASS  ") for line in printed[:-1])
    template = check(HW1, assignment_dir(HW1) / "template", quiet=True)
    assert template.failures() == template.outcomes
    assert format_run(template).splitlines()[0].startswith("FAIL  ") and "NotImplementedError" in format_run(template)
    with pytest.raises(FileNotFoundError, match="solution.py"):
        check(HW1, tmp_path)
    with pytest.raises(FileNotFoundError, match="no assignment 'hw9'"):
        check("hw9", reference)
