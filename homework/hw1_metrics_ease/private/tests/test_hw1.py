"""Hidden tests of homework 1, graded against seminar_lib (the course's tested implementation)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from seminar_lib import metrics
from seminar_lib.models.ease import ease_weights, gram_matrix
from seminar_lib.topk import topk_deterministic

LIBRARY = {"precision_at_k": metrics.precision, "recall_at_k": metrics.recall, "ndcg_at_k": metrics.ndcg,
           "map_at_k": metrics.map_at_k, "mrr_at_k": metrics.mrr}


def random_case(seed: int, n_users: int = 3000, n_items: int = 300) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Recommendations (some lists shorter than 10, some test users without any) and test items."""
    rng = np.random.default_rng(seed)
    lengths = rng.choice([10, 10, 7, 3], n_users)
    users = np.repeat(np.arange(n_users), lengths)
    ranks = np.concatenate([np.arange(1, n + 1) for n in lengths])
    items = np.concatenate([rng.choice(n_items, n, replace=False) for n in lengths])
    recos = pl.DataFrame({"user_id": users, "item_id": items, "rank": ranks}).filter(pl.col("user_id") >= 100)
    test_users = np.repeat(np.arange(0, n_users, 2), rng.integers(1, 8, n_users // 2))
    test = pl.DataFrame({"user_id": test_users, "item_id": rng.choice(n_items, len(test_users))}).unique()
    return recos, test


def check_metric(solution, name: str, seed: int, k: int) -> None:
    recos, test = random_case(seed)
    got = getattr(solution, name)(recos, test, k)
    assert got == pytest.approx(LIBRARY[name](recos, test, k), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 5), (2, 1)])
def test_precision(solution, seed, k):
    check_metric(solution, "precision_at_k", seed, k)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 5), (2, 1)])
def test_recall(solution, seed, k):
    check_metric(solution, "recall_at_k", seed, k)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 5), (2, 1)])
def test_ndcg(solution, seed, k):
    check_metric(solution, "ndcg_at_k", seed, k)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 5), (2, 1)])
def test_map(solution, seed, k):
    check_metric(solution, "map_at_k", seed, k)


@pytest.mark.parametrize("seed,k", [(0, 10), (1, 5), (2, 1)])
def test_mrr(solution, seed, k):
    check_metric(solution, "mrr_at_k", seed, k)


def test_metric_edge_cases(solution):
    recos = pl.DataFrame({"user_id": [1, 1, 1], "item_id": [5, 6, 7], "rank": [1, 2, 3]})
    test = pl.DataFrame({"user_id": [1, 1, 2], "item_id": [6, 6, 9]})  # a duplicate pair; user 2 has no list
    assert solution.precision_at_k(recos, test, 2) == pytest.approx(0.25)   # (1/2 + 0) / 2
    assert solution.recall_at_k(recos, test, 2) == pytest.approx(0.5)       # the duplicate counts once
    assert solution.mrr_at_k(recos, test, 1) == pytest.approx(0.0)          # rank 2 is beyond k = 1
    assert solution.ndcg_at_k(recos.head(0), test, 3) == pytest.approx(0.0)  # nobody got a list


def ease_matrix(seed: int, n_users: int = 400, n_items: int = 120) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.random((n_users, n_items)) < rng.uniform(0.02, 0.2, n_items)[None, :]
    X = sp.csr_matrix(dense.astype(np.float64))
    X.data[::7] = 3.0  # repeated events: the model must treat X as binary
    return X


@pytest.mark.parametrize("seed,lam", [(0, 10.0), (1, 250.0)])
def test_ease_weights(solution, seed, lam):
    X = ease_matrix(seed)
    expected = ease_weights(gram_matrix(X, binary=True, dtype=torch.float64), lam).numpy()
    got = np.asarray(solution.ease_fit(X, lam), dtype=np.float64)
    assert got.shape == expected.shape
    assert np.allclose(np.diag(got), 0.0)
    assert np.allclose(got, expected, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed,k", [(2, 10), (3, 1)])
def test_ease_recommend(solution, seed, k):
    X = ease_matrix(seed)
    B = ease_weights(gram_matrix(X, binary=True, dtype=torch.float64), 50.0).numpy()
    scores = torch.from_numpy((X != 0).astype(np.float64) @ B)
    seen = X.tocoo()
    scores[seen.row, seen.col] = -torch.inf
    expected = topk_deterministic(scores, k)[1].numpy()
    got = np.asarray(solution.ease_recommend(B, X, k))
    assert got.shape == expected.shape and np.array_equal(got, expected)


@pytest.mark.parametrize("lam", [0.0, -1.0])
def test_ease_rejects_bad_regularization(solution, lam):
    with pytest.raises(ValueError):
        solution.ease_fit(ease_matrix(0, 20, 10), lam)
