"""Homework 1 — the hidden cases (instructors only). Inputs the students never see: several seeds, edge cases
(users without recommendations, duplicates, k beyond the lists, empty rows and columns, all-ties) and a
catalogue of ML-100K's size with a time limit; each result is compared with the reference solution's.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from seminar_lib.grading.cases import Case, allclose, all_of, equal, raises
from seminar_lib.grading.public import assignment_module

public = assignment_module("hw1_metrics_knn", "public_cases.py")
RTOL = 1e-6
SEEDS = (11, 23, 37)


def recos_and_test(seed: int, *, n_users: int = 200, n_items: int = 300, max_list: int = 15,
                   ratings: tuple[float, ...] = (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)) -> dict[str, Any]:
    """Random lists (some users without recommendations, some lists shorter than k, gaps in the ranks are
    absent), test ratings in ``ratings`` with duplicated pairs, recommendations for users outside the test."""
    rng = np.random.default_rng(seed)
    users, items, ranks = [], [], []
    for u in range(n_users):
        length = int(rng.integers(0, max_list + 1)) if u % 7 else 0
        chosen = rng.choice(n_items, size=length, replace=False)
        users += [u] * length
        items += chosen.tolist()
        ranks += list(range(1, length + 1))
    n_test = n_users * 6
    tu = rng.integers(0, int(n_users * 0.9), n_test)  # the last 10 % of users have no test items
    ti = np.where(rng.random(n_test) < 0.5, rng.integers(0, 40, n_test), rng.integers(0, n_items, n_test))
    tr = rng.choice(np.asarray(ratings), n_test)
    dup = rng.choice(n_test, n_test // 10, replace=False)  # the same pairs again, other ratings
    tu, ti = np.concatenate([tu, tu[dup]]), np.concatenate([ti, ti[dup]])
    tr = np.concatenate([tr, rng.choice(np.asarray(ratings), dup.size)])
    return {"recos": {"user_id": np.asarray(users), "item_id": np.asarray(items), "rank": np.asarray(ranks)},
            "test": {"user_id": tu, "item_id": ti, "rating": tr.astype(np.float64)}}


def popular_recos(seed: int, n_users: int = 200, n_items: int = 300) -> dict[str, np.ndarray]:
    """Lists biased towards the first items (so that test items are often hit)."""
    rng = np.random.default_rng(seed)
    users, items, ranks = [], [], []
    for u in range(n_users):
        length = int(rng.integers(0, 25))
        weights = 1.0 / (np.arange(n_items) + 5.0)
        chosen = rng.choice(n_items, size=length, replace=False, p=weights / weights.sum())
        users += [u] * length
        items += chosen.tolist()
        ranks += list(range(1, length + 1))
    return {"user_id": np.asarray(users), "item_id": np.asarray(items), "rank": np.asarray(ranks)}


def ndcg_inputs(seed: int, k: int) -> dict[str, Any]:
    data = recos_and_test(seed)
    data["recos"] = popular_recos(seed + 1)
    return {**data, "k": k}


def diversity_inputs(seed: int, k: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    n_items, d = 60, 6
    vectors = rng.normal(size=(n_items, d)) * (rng.random((n_items, 1)) + 0.1)
    vectors[::13] = 0.0  # a few zero vectors
    vectors[rng.random((n_items, d)) < 0.3] = 0.0
    users, items, ranks = [], [], []
    for u in range(120):
        length = int(rng.integers(0, 12))
        chosen = rng.integers(0, n_items, length)  # with repeats: a duplicated item counts once
        users += [u] * length
        items += chosen.tolist()
        ranks += list(range(1, length + 1))
    return {"recos": {"user_id": np.asarray(users), "item_id": np.asarray(items), "rank": np.asarray(ranks)},
            "item_vectors": vectors, "k": k}


def binary_matrix(rng: np.random.Generator, shape: tuple[int, int], density: float, *,
                  duplicates: bool = False) -> dict[str, Any]:
    mask = rng.random(shape) < density
    rows, cols = np.nonzero(mask)
    if duplicates and rows.size:  # a pair listed twice (scipy sums it to 2: still one interaction)
        extra = rng.choice(rows.size, max(rows.size // 8, 1), replace=False)
        rows, cols = np.concatenate([rows, rows[extra]]), np.concatenate([cols, cols[extra]])
    return {"rows": rows, "cols": cols, "shape": list(shape)}


def auc_inputs(seed: int, *, ties: bool) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    shape = (80, 50)
    scores = rng.integers(0, 4, shape).astype(np.float64) if ties else rng.normal(size=shape)
    scores[5] = 1.0  # a user whose scores are all tied
    train = binary_matrix(rng, shape, 0.2, duplicates=True)
    test = binary_matrix(rng, shape, 0.1)
    keep = test["rows"] % 9 != 0  # users without test items
    test = {**test, "rows": test["rows"][keep], "cols": test["cols"][keep]}
    return {"scores": scores, "train": train, "test": test}


def knn_inputs(seed: int, n_neighbours: int, shrinkage: float) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    shape = (70, 45)
    popularity = rng.random(shape[1]) ** 2
    mask = rng.random(shape) < popularity[None, :] * 0.4
    mask[:, 7] = False  # an item nobody saw
    mask[3] = False  # a user who saw nothing
    rows, cols = np.nonzero(mask)
    extra = rng.choice(rows.size, rows.size // 10, replace=False)
    X = {"rows": np.concatenate([rows, rows[extra]]), "cols": np.concatenate([cols, cols[extra]]), "shape": list(shape)}
    return {"X": X, "n_neighbours": n_neighbours, "shrinkage": shrinkage}


def knn_exact_ties() -> dict[str, Any]:
    """Identical item columns: their similarities are the same floats however the formula is computed, so
    the choice among them must follow "ties to the lower index" exactly."""
    rng = np.random.default_rng(5)
    base = rng.random((40, 6)) < 0.35
    columns = np.concatenate([base, base[:, [0, 0, 1, 2, 2, 2]]], axis=1)  # items 6.. copy items 0, 1, 2
    rows, cols = np.nonzero(columns)
    return {"X": {"rows": rows, "cols": cols, "shape": [40, 12]}, "n_neighbours": 2, "shrinkage": 0.5}


def recommend_inputs(seed: int, k: int) -> dict[str, Any]:
    """A dyadic S (multiples of 1/8): every score is exact in float64, so ties are real ties."""
    rng = np.random.default_rng(seed)
    n_items = 30
    S = rng.integers(0, 5, (n_items, n_items)) * (rng.random((n_items, n_items)) < 0.3) / 8.0
    np.fill_diagonal(S, 0.0)
    rows, cols = np.nonzero(S)
    X = binary_matrix(rng, (50, n_items), 0.15, duplicates=True)
    keep = (X["rows"] != 4) & (X["rows"] != 6)  # user 4 saw everything, user 6 nothing
    X = {"rows": np.concatenate([X["rows"][keep], np.full(n_items, 4)]),
         "cols": np.concatenate([X["cols"][keep], np.arange(n_items)]), "shape": X["shape"]}
    return {"S": {"rows": rows, "cols": cols, "values": S[rows, cols], "shape": [n_items, n_items]}, "X": X, "k": k}


def large_knn() -> dict[str, Any]:
    """A catalogue of ML-100K's size (943 users × 1,682 items, ~6 % dense, popularity-skewed)."""
    rng = np.random.default_rng(2024)
    popularity = 1.0 / (np.arange(1682) + 10.0) ** 0.8
    per_user = rng.integers(20, 200, 943)
    rows = np.repeat(np.arange(943), per_user)
    cols = rng.choice(1682, rows.size, p=popularity / popularity.sum())
    return {"X": {"rows": rows, "cols": cols, "shape": [943, 1682]}, "n_neighbours": 50, "shrinkage": 10.0}


def large_ndcg() -> dict[str, Any]:
    """100,000 recommendation rows (5,000 users × 20) and 50,000 test ratings."""
    data = recos_and_test(99, n_users=5000, n_items=2000, max_list=20, ratings=(1.0, 2.0, 3.0, 4.0, 5.0))
    return {**data, "k": 10}


def lazy(make: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Callable[[], dict[str, Any]]:
    return lambda: make(*args, **kwargs)


value = allclose("value", rtol=RTOL)
CASES = [
    *[Case("graded_ndcg", f"graded_ndcg[seed {s}, k {k}]", "graded_ndcg", lazy(ndcg_inputs, s, k), value)
      for s in SEEDS for k in (5, 20)],
    Case("graded_ndcg", "graded_ndcg[one rating everywhere]", "graded_ndcg",
         lazy(lambda: {**recos_and_test(3, ratings=(4.0,)), "k": 10}), value),
    Case("graded_ndcg", "graded_ndcg[k beyond every list]", "graded_ndcg",
         lazy(lambda: {**recos_and_test(4, max_list=5), "k": 50}), value),
    *[Case("intra_list_diversity", f"intra_list_diversity[seed {s}, k {k}]", "diversity",
           lazy(diversity_inputs, s, k), value) for s in SEEDS for k in (3, 10)],
    Case("intra_list_diversity", "intra_list_diversity[no list of two]", "diversity",
         {"recos": {"user_id": [1, 2, 3], "item_id": [4, 4, 0], "rank": [1, 1, 1]},
          "item_vectors": np.eye(5), "k": 10}, value),
    *[Case("mean_auc", f"mean_auc[seed {s}, {'tied' if t else 'continuous'} scores]", "auc",
           lazy(auc_inputs, s, ties=t), value) for s in SEEDS for t in (False, True)],
    Case("mean_auc", "mean_auc[all scores tied]", "auc",
         lazy(lambda: {**auc_inputs(1, ties=False), "scores": np.zeros((80, 50))}), value),
    *[Case("itemknn_similarity", f"itemknn_similarity[seed {s}, n {n}, λ {lam}]", "similarity",
           lazy(knn_inputs, s, n, lam), public.kept_neighbours()) for s in SEEDS for n, lam in ((3, 0.0), (10, 2.5))],
    Case("itemknn_similarity", "itemknn_similarity[more neighbours than items]", "similarity",
         lazy(knn_inputs, 8, 100, 20.0), public.kept_neighbours()),
    Case("itemknn_similarity", "itemknn_similarity[exact ties to the lower index]", "similarity", lazy(knn_exact_ties),
         all_of(public.kept_neighbours(), allclose("dense", rtol=1e-9, atol=1e-12))),
    *[Case("itemknn_recommend", f"itemknn_recommend[seed {s}, k {k}]", "recommend", lazy(recommend_inputs, s, k),
           equal("top")) for s in SEEDS for k in (1, 10, 40)],
    Case("scale", "itemknn_similarity at ML-100K size (943 × 1,682, 50 neighbours)", "similarity_rows",
         lazy(large_knn), allclose("row_nnz", "row_top", "diagonal", rtol=1e-9, atol=1e-12), timeout=60),
    Case("scale", "graded_ndcg_at_k on 100,000 recommendation rows", "graded_ndcg", lazy(large_ndcg), value,
         timeout=60),
    Case("input_validation", "itemknn_similarity refuses n_neighbours = 0", "bad_input",
         {"function": "itemknn_similarity", "inputs": {"X": public.KNN_X, "n_neighbours": 0, "shrinkage": 1.0}},
         raises("ValueError"), reference=False),
    Case("input_validation", "itemknn_recommend refuses k = 0", "bad_input",
         {"function": "itemknn_recommend", "inputs": {"S": public.REC_S, "X": public.REC_X, "k": 0}},
         raises("ValueError"), reference=False),
    Case("input_validation", "intra_list_diversity refuses k = -1", "bad_input",
         {"function": "intra_list_diversity", "inputs": {"recos": public.ILD_RECOS, "item_vectors": public.ILD_VECTORS,
                                                         "k": -1}}, raises("ValueError"), reference=False),
    Case("input_validation", "mean_auc refuses non-finite scores", "bad_input",
         {"function": "mean_auc", "inputs": {"scores": [[np.nan, 1.0, 0.0, 0.0]] * 4, "train": public.AUC_TRAIN,
                                             "test": public.AUC_TEST}}, raises("ValueError"), reference=False),
    Case("input_validation", "mean_auc refuses a test where no user has a held-out positive", "bad_input",
         {"function": "mean_auc", "inputs": {"scores": public.AUC_SCORES, "train": public.AUC_TRAIN,
                                             "test": public.AUC_TRAIN}}, raises("ValueError"), reference=False),
]
