"""The homework cases themselves: the reference passes every public and hidden case, the untouched template
fails every case with a readable reason, and a plausible wrong solution fails the case aimed at it.

Everything runs in this process (``run_cases_in_process``): these tests check the cases, not the sandbox.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from seminar_lib.grading.cases import MAX_REASON, load_cases, load_module, run_cases_in_process
from seminar_lib.grading.public import assignment_dir, assignment_module, check, format_run
from seminar_lib.models.sequential.losses import SequentialLoss

HW1, HW2, HW3 = "hw1_metrics_knn", "hw2_dssm", "hw3_sasrec"
ASSIGNMENTS = [HW1, HW2, HW3]
SLOW_ITEMS = {"quality", "leaderboard"}  # cases that train a model on ML-100K (tested in the slow tests)


def parts(assignment: str) -> tuple[types.ModuleType, types.ModuleType, types.ModuleType, list, list]:
    folder = assignment_dir(assignment)
    harness = assignment_module(assignment, "harness.py")
    reference = load_module(folder / "private" / "reference" / "solution.py", f"_{assignment}_reference")
    template = load_module(folder / "template" / "solution.py", f"_{assignment}_template")
    return (harness, reference, template, load_cases(folder / "public_cases.py"),
            load_cases(folder / "private" / "cases.py"))


def variant(assignment: str, **replace: Callable) -> types.ModuleType:
    """The reference solution with some functions replaced (a plausible wrong submission)."""
    module = load_module(assignment_dir(assignment) / "private" / "reference" / "solution.py",
                         f"_{assignment}_variant_{'_'.join(replace)}")
    for name, fn in replace.items():
        setattr(module, name, fn)
    return module


def failed_items(run) -> set[str]:
    return {o.item for o in run.failures()}


def fast(cases: list) -> list:
    return [c for c in cases if c.item not in SLOW_ITEMS]


@pytest.fixture(scope="module")
def hw1():
    return parts(HW1)


@pytest.fixture(scope="module")
def hw2():
    return parts(HW2)


@pytest.fixture(scope="module")
def hw3():
    return parts(HW3)


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_reference_passes_every_public_and_hidden_case(assignment):
    harness, reference, _, public, hidden = parts(assignment)
    run = run_cases_in_process(harness, reference, fast(public + hidden), reference)
    assert len(run.outcomes) == len(fast(public + hidden))
    assert not run.failures(), [(o.case, o.reason) for o in run.failures()]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_the_template_fails_every_case_with_a_readable_reason(assignment):
    harness, reference, template, public, hidden = parts(assignment)
    run = run_cases_in_process(harness, template, public + hidden, reference)
    assert len(run.failures()) == len(run.outcomes) == len(public + hidden)
    for outcome in run.outcomes:
        assert "NotImplementedError" in outcome.reason and len(outcome.reason) <= MAX_REASON
        assert "Traceback" not in outcome.reason


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_every_point_item_has_hidden_cases_and_most_have_public_ones(assignment):
    import tomllib
    items = set(tomllib.loads((assignment_dir(assignment) / "assignment.toml").read_text())["points"]["cases"])
    _, _, _, public, hidden = parts(assignment)
    assert {c.item for c in hidden} == items
    assert {c.item for c in public} <= items and len({c.item for c in public}) >= 4


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


# ---- homework 3: plausible wrong losses and samplers

def _ref3():
    return variant(HW3)


def _log_q_swapped(popularity, alpha):
    """α weighs the popularity instead of the uniform part."""
    return _ref3().mixture_log_q(popularity, 1 - alpha)


def _sampler_uniform(popularity, alpha, k, generator=None):
    return torch.randint(0, len(popularity), (k,), generator=generator)


def _sampler_popularity_only(popularity, alpha, k, generator=None):
    return _ref3().sample_mixed_negatives(popularity, 0.0, k, generator)


def _sampler_wrong_alpha(popularity, alpha, k, generator=None):
    return _ref3().sample_mixed_negatives(popularity, alpha * 0.8 + 0.1, k, generator)


def _sampler_global_rng(popularity, alpha, k, generator=None):
    """Right distribution, but draws from torch's global generator instead of the one it is given."""
    return _ref3().sample_mixed_negatives(popularity, alpha, k, None)


def _loss_positive_corrected(pos, neg, collision, log_q_neg):
    """The library's in-batch convention: the positive corrected too (by its mean log q here)."""
    return _ref3().mixed_softmax_loss(pos - log_q_neg.mean(), neg, collision, log_q_neg)


def _loss_without_log_k(pos, neg, collision, log_q_neg):
    return _ref3().mixed_softmax_loss(pos, neg, collision, log_q_neg - math.log(neg.shape[-1]))


def _loss_naive_exp(pos, neg, collision, log_q_neg):
    weights = torch.exp(neg - log_q_neg - math.log(neg.shape[-1])).masked_fill(collision, 0.0)
    return (torch.log(torch.exp(pos) + weights.sum(dim=1)) - pos).mean()


def _loss_collisions_kept(pos, neg, collision, log_q_neg):
    return _ref3().mixed_softmax_loss(pos, neg, torch.zeros_like(collision), log_q_neg)


def _entry_uniform_negatives(alpha=0.5, n_negatives=256):
    """Corrects with the mixture but draws the negatives uniformly (a second, different draw)."""
    ref = _ref3()

    def compute(x):
        negatives = torch.randint(0, x.item_vectors.shape[0], (x.n_negatives,), generator=x.generator)
        log_q = ref.mixture_log_q(x.log_q.double().exp(), alpha)
        collision = x.positives[:, None] == negatives[None, :]
        return ref.mixed_softmax_loss((x.hidden * x.item_vectors[x.positives]).sum(-1),
                                      x.hidden @ x.item_vectors[negatives].T, collision, log_q[negatives])
    return SequentialLoss(compute, needs_negatives=False, needs_log_q=True, default_negatives=n_negatives)


def _entry_needs_no_log_q(alpha=0.5, n_negatives=256):
    import dataclasses
    return dataclasses.replace(_ref3().registry_entry(alpha, n_negatives), needs_log_q=False)


@pytest.mark.parametrize(("function", "wrong", "item"), [
    ("mixture_log_q", _log_q_swapped, "mixture_log_q"),
    ("sample_mixed_negatives", _sampler_uniform, "sampler"),
    ("sample_mixed_negatives", _sampler_popularity_only, "sampler"),
    ("sample_mixed_negatives", _sampler_wrong_alpha, "sampler"),
    ("sample_mixed_negatives", _sampler_global_rng, "sampler"),
    ("mixed_softmax_loss", _loss_positive_corrected, "mixed_softmax_loss"),
    ("mixed_softmax_loss", _loss_without_log_k, "mixed_softmax_loss"),
    ("mixed_softmax_loss", _loss_naive_exp, "mixed_softmax_loss"),
    ("mixed_softmax_loss", _loss_collisions_kept, "mixed_softmax_loss"),
    ("registry_entry", _entry_uniform_negatives, "registry_entry"),
    ("registry_entry", _entry_needs_no_log_q, "registry_entry"),
])
def test_hw3_a_plausible_wrong_solution_fails_its_hidden_cases(hw3, function, wrong, item):
    harness, reference, _, _, hidden = hw3
    run = run_cases_in_process(harness, variant(HW3, **{function: wrong}), fast(hidden), reference)
    assert item in failed_items(run)
    assert failed_items(run) <= {item, "registry_entry", "input_validation"}


# ---- homework 2: plausible wrong parts

def _ref2():
    return variant(HW2)


def _loss_hinge(pos, neg, margin=0.2, scale=10.0):
    """The plain triplet hinge, averaged over the negatives."""
    return torch.relu(neg - pos[:, None] + margin).mean()


def _loss_naive(pos, neg, margin=0.2, scale=10.0):
    return (torch.log(1 + torch.exp(scale * (neg - pos[:, None] + margin)).sum(dim=1)) / scale).mean()


def _loss_mean_over_negatives(pos, neg, margin=0.2, scale=10.0):
    logits = torch.cat([torch.zeros_like(pos)[:, None], scale * (neg - pos[:, None] + margin)], dim=1)
    return ((torch.logsumexp(logits, dim=1) - math.log(neg.shape[1])) / scale).mean()


class _EmbeddingIgnoringWeights(torch.nn.Module):
    def __init__(self, size, dim):
        super().__init__()
        self.table = torch.nn.Parameter(torch.randn(size + 1, dim))
        self.size = size

    def forward(self, index, weight):
        return (self.table[index] * (index != self.size).unsqueeze(-1)).sum(dim=1)


class _EmbeddingMean(torch.nn.Module):
    def __init__(self, size, dim):
        super().__init__()
        self.bag = torch.nn.EmbeddingBag(size + 1, dim, mode="mean")

    def forward(self, index, weight):
        return self.bag(index)


class _TowerBatchNorm(torch.nn.Module):
    def __init__(self, in_dim, out_dim, hidden=128, dropout=0.1):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.BatchNorm1d(hidden), torch.nn.ReLU(),
                                       torch.nn.Dropout(dropout), torch.nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


class _TowerNormAfterRelu(torch.nn.Module):
    def __init__(self, in_dim, out_dim, hidden=128, dropout=0.1):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.ReLU(), torch.nn.LayerNorm(hidden),
                                       torch.nn.Dropout(dropout), torch.nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


class _TowerDropoutIgnored(torch.nn.Module):
    def __init__(self, in_dim, out_dim, hidden=128, dropout=0.1):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(in_dim, hidden), torch.nn.LayerNorm(hidden), torch.nn.ReLU(),
                                       torch.nn.Dropout(0.0), torch.nn.Linear(hidden, out_dim))

    def forward(self, x):
        return self.net(x)


def _brute_force_index(item_vectors, ids):
    return _ref2().AnnIndex(item_vectors, ids, n_cells=1)


def _index_returning_positions(item_vectors, ids):
    return _ref2().AnnIndex(item_vectors, np.arange(len(ids)))


class _IndexUnderreportingItsCost:
    """Scores every item but claims to have probed only the query's nearest cell."""

    def __init__(self, item_vectors, ids):
        self.exact = _ref2().AnnIndex(item_vectors, ids, n_cells=1)
        self.cells = _ref2().AnnIndex(item_vectors, ids)
        self.cell_of = self.cells.cell_of

    def search(self, queries, k=10):
        self.cells.search(queries, k)
        self.probed = self.cells.probed[:, :1]
        return self.exact.search(queries, k)


@pytest.mark.parametrize(("name", "wrong", "items"), [
    ("pairwise_loss", _loss_hinge, {"pairwise_loss"}),
    ("pairwise_loss", _loss_naive, {"pairwise_loss"}),
    ("pairwise_loss", _loss_mean_over_negatives, {"pairwise_loss"}),
    ("FeatureEmbedding", _EmbeddingIgnoringWeights, {"feature_embedding"}),
    ("FeatureEmbedding", _EmbeddingMean, {"feature_embedding"}),
    ("Tower", _TowerBatchNorm, {"tower"}),
    ("Tower", _TowerNormAfterRelu, {"tower"}),
    ("Tower", _TowerDropoutIgnored, {"tower"}),
    ("AnnIndex", _brute_force_index, {"ann_recall"}),
    ("AnnIndex", _index_returning_positions, {"ann_results", "ann_recall"}),
    ("AnnIndex", _IndexUnderreportingItsCost, {"ann_results", "ann_recall"}),
])
def test_hw2_a_plausible_wrong_part_fails_exactly_its_cases(hw2, name, wrong, items):
    harness, reference, _, public, hidden = hw2
    probe = {"pairwise_loss": "loss_value", "FeatureEmbedding": "feature_forward", "Tower": "tower_forward",
             "AnnIndex": "ann_search"}[name]  # the other probes never call the replaced part
    cases = [c for c in public + hidden if c.probe == probe]
    run = run_cases_in_process(harness, variant(HW2, **{name: wrong}), cases, reference)
    assert failed_items(run) == items, [(o.case, o.reason) for o in run.failures()]


@pytest.mark.slow
def test_hw2_a_dssm_with_a_broken_loss_or_als_itself_misses_the_bars(hw2):
    harness, reference, _, _, hidden = hw2
    loss_case = next(c for c in hidden if c.item == "loss_trains")
    zero = variant(HW2, pairwise_loss=lambda pos, neg, margin=0.2, scale=10.0: (neg - pos[:, None]).mean() * 0)
    outcome = run_cases_in_process(harness, zero, [loss_case], reference).outcomes[0]
    assert not outcome.passed and "below the bar" in outcome.reason
    from seminar_lib.models import ALS
    als = variant(HW2, make_model=lambda users, items: ALS(seed=42))
    board = next(c for c in hidden if c.item == "leaderboard")
    outcome = run_cases_in_process(harness, als, [board], reference).outcomes[0]
    assert not outcome.passed and abs(outcome.value - 0.2087) < 1e-3


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
