"""Homework 1 — the public cases: small inputs with expected values computed by hand (the computation is
in the comment above each case). Run them with

    from seminar_lib.grading.public import check
    check("hw1_metrics_knn")          # in the folder that holds your solution.py

The grader runs other, hidden cases (other seeds, bigger inputs, edge cases) against the reference
solution; these are the ones you can see.
"""

from __future__ import annotations

import math

import numpy as np

from seminar_lib.grading.cases import Case, ProbeResult, against, allclose, all_of, equal, raises

RTOL = 1e-6


def kept_neighbours(rtol: float = 1e-9, atol: float = 1e-12):
    """The ItemKNN check that exact ties cannot fool: ``full`` (the unpruned similarities) equals the
    expected one, and each row of the pruned ``dense`` keeps as many neighbours as expected, each with its
    true similarity, and the same multiset of values — so among neighbours with equal similarity, either
    may be kept when two ways of computing the formula round differently."""

    def check(result: ProbeResult, expected: ProbeResult | None) -> str | None:
        if not result.ok:
            return f"raised {result.error}"
        if (why := allclose("full", rtol=rtol, atol=atol)(result, expected)) is not None:
            return f"the similarities (n_neighbours = all) differ: {why}"
        got, want = np.asarray(result.outputs["dense"]), np.asarray(expected.outputs["dense"])
        full = np.asarray(expected.outputs["full"])
        if got.shape != want.shape:
            return f"the pruned matrix has shape {got.shape}, expected {want.shape}"
        counts, want_counts = (got != 0).sum(axis=1), (want != 0).sum(axis=1)
        if (bad := np.flatnonzero(counts != want_counts)).size:
            r = int(bad[0])
            return f"row {r} keeps {int(counts[r])} neighbours, expected {int(want_counts[r])}"
        if not np.allclose(got[got != 0], full[got != 0], rtol=rtol, atol=atol):
            return "a kept value is not the similarity of that pair"
        if not np.allclose(-np.sort(-got, axis=1), -np.sort(-want, axis=1), rtol=rtol, atol=atol):
            return "a row does not keep its most similar items"
        return None

    return check


def sparse(rows: list[int], cols: list[int], shape: tuple[int, int], values: list[float] | None = None) -> dict:
    spec = {"rows": rows, "cols": cols, "shape": list(shape)}
    return spec if values is None else {**spec, "values": values}


# --- graded nDCG, k = 2 -------------------------------------------------------------------------------------
# user 1: test ratings {10: 3, 11: 1, 12: 2}; top-2 = [12, 14] (item 10 at rank 3 is beyond k)
#   DCG = (2^2 − 1)/log2(2) + 0 = 3;  IDCG = (2^3 − 1)/log2(2) + (2^2 − 1)/log2(3) = 7 + 1.892789 = 8.892789
#   nDCG = 3 / 8.892789 = 0.337352
# user 2: test {10: 2}; top-2 = [11, 10]: DCG = 3/log2(3) = 1.892789, IDCG = 3  →  0.630930
# user 3: test {13: 5}, no recommendations  →  0;  user 4 has recommendations but no test: ignored
# mean over the 3 test users = (0.337352 + 0.630930 + 0) / 3 = 0.322761
NDCG_RECOS = {"user_id": [1, 1, 1, 2, 2, 4], "item_id": [12, 14, 10, 11, 10, 10], "rank": [1, 2, 3, 1, 2, 1]}
NDCG_TEST = {"user_id": [1, 1, 1, 2, 3], "item_id": [10, 11, 12, 10, 13], "rating": [3.0, 1.0, 2.0, 2.0, 5.0]}
U1 = 3 / (7 + 3 / math.log2(3))
U2 = (3 / math.log2(3)) / 3

# --- graded nDCG, a duplicated test pair and k beyond the lists, k = 5 ---------------------------------------
# user 1: test {10: 1, 10: 3 (the same pair again: counts once, with rating 3), 11: 2}; top = [11, 10]
#   DCG = 3/log2(2) + 7/log2(3) = 3 + 4.416508 = 7.416508;  IDCG = 7 + 3/log2(3) = 8.892789  →  0.833990
DUP_RECOS = {"user_id": [1, 1], "item_id": [11, 10], "rank": [1, 2]}
DUP_TEST = {"user_id": [1, 1, 1], "item_id": [10, 10, 11], "rating": [1.0, 3.0, 2.0]}
DUP = (3 + 7 / math.log2(3)) / (7 + 3 / math.log2(3))

# --- intra-list diversity, k = 3; item vectors 0: (1, 0), 1: (0, 1), 2: (1, 1), 3: (0, 0) ----------------------
# user A: [0, 1]: cos = 0 → distance 1
# user B: [0, 2]: cos = 1/√2 → 1 − 0.707107 = 0.292893
# user C: [1] only: fewer than two items, not counted
# user D: [0, 1, 2]: pairs (0,1) 1, (0,2) 0.292893, (1,2) 0.292893 → mean 0.528595
# user E: [3, 0, 3 again (counts once)] and item 1 at rank 4 (beyond k): the zero vector has cosine 0 → 1
# mean over A, B, D, E = (1 + 0.292893 + 0.528595 + 1) / 4 = 0.705372
ILD_RECOS = {"user_id": [1, 1, 2, 2, 3, 4, 4, 4, 5, 5, 5, 5], "item_id": [0, 1, 0, 2, 1, 0, 1, 2, 3, 0, 3, 1],
             "rank": [1, 2, 1, 2, 1, 1, 2, 3, 1, 2, 3, 4]}
ILD_VECTORS = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.0, 0.0]]
D = 1 - 1 / math.sqrt(2)
ILD = (1 + D + (1 + 2 * D) / 3 + 1) / 4

# --- mean AUC, 4 users × 4 items --------------------------------------------------------------------------------
# u0: scores [0.9, 0.1, 0.5, 0.5], train {0}, test {2}: P = {2: 0.5}, N = {1: 0.1, 3: 0.5}
#     0.5 > 0.1 → 1, 0.5 = 0.5 → ½  →  AUC = 1.5 / 2 = 0.75
# u1: scores [0.7, 0.8, 0.4, 0.6], train {}, test {0, 3}: P = {0.7, 0.6}, N = {0.8, 0.4}
#     0.7: beats 0.4 only → 1; 0.6: beats 0.4 only → 1  →  AUC = 2 / 4 = 0.5
# u2: no test items → not counted;  u3: its test item 1 is also in train → no positive → not counted
# mean over u0, u1 = 0.625
AUC_SCORES = [[0.9, 0.1, 0.5, 0.5], [0.7, 0.8, 0.4, 0.6], [0.3, 0.2, 0.1, 0.0], [0.1, 0.2, 0.3, 0.4]]
AUC_TRAIN = sparse([0, 3], [0, 1], (4, 4))
AUC_TEST = sparse([0, 1, 1, 3], [2, 0, 3, 1], (4, 4))

# --- ItemKNN similarity, λ = 1 ----------------------------------------------------------------------------------
# X (3 users × 4 items): u0 {0, 1}, u1 {0, 1, 2}, u2 {1, 2}; item 3 was never seen.
# ‖x_0‖ = √2, ‖x_1‖ = √3, ‖x_2‖ = √2, ‖x_3‖ = 0; x_0·x_1 = 2, x_0·x_2 = 1, x_1·x_2 = 2
# s_01 = s_12 = 2 / (√3·√2 + 1) = 0.579796,  s_02 = 1 / (√2·√2 + 1) = 1/3,  s_i3 = 0 / (0 + 1) = 0
# n_neighbours = 1: row 0 keeps item 1; row 1 has s_10 = s_12 (a tie) and keeps the lower index, 0;
# row 2 keeps item 1; row 3 keeps nothing.
KNN_X = sparse([0, 0, 1, 1, 1, 2, 2], [0, 1, 0, 1, 2, 1, 2], (3, 4))
A = 2 / (math.sqrt(6) + 1)
KNN_FULL = [[0, A, 1 / 3, 0], [A, 0, A, 0], [1 / 3, A, 0, 0], [0, 0, 0, 0]]
KNN_TOP1 = [[0, A, 0, 0], [A, 0, 0, 0], [0, A, 0, 0], [0, 0, 0, 0]]

# --- ItemKNN recommend --------------------------------------------------------------------------------------------
# S = [[0, .5, .25, 0], [.5, 0, .5, 0], [.25, .5, 0, 0], [0, 0, 0, 0]]
# u0 seen {0}: scores = row 0 = [0, .5, .25, 0] → unseen best first: 1, 2, 3
# u1 seen {1, 2}: scores = row 1 + row 2 = [.75, .5, .5, 0] → unseen: 0 (.75), 3 (0)
# u2 seen {} (an empty row): all scores 0 → ties to the lower index: 0, 1, 2, 3
# u3 seen everything → no unseen item: −1 everywhere
# k = 2 → [[1, 2], [0, 3], [0, 1], [−1, −1]];  k = 6 (beyond the 4 items) → 4 columns, padded with −1
REC_S = sparse([0, 0, 1, 1, 2, 2], [1, 2, 0, 2, 0, 1], (4, 4), [0.5, 0.25, 0.5, 0.5, 0.25, 0.5])
REC_X = sparse([0, 1, 1, 3, 3, 3, 3], [0, 1, 2, 0, 1, 2, 3], (4, 4))

CASES = [
    Case("graded_ndcg", "graded_ndcg: three users, one without recommendations", "graded_ndcg",
         {"recos": NDCG_RECOS, "test": NDCG_TEST, "k": 2},
         against({"value": (U1 + U2) / 3}, allclose("value", rtol=RTOL)), reference=False),
    Case("graded_ndcg", "graded_ndcg: a duplicated test pair, k beyond the list", "graded_ndcg",
         {"recos": DUP_RECOS, "test": DUP_TEST, "k": 5},
         against({"value": DUP}, allclose("value", rtol=RTOL)), reference=False),
    Case("intra_list_diversity", "intra_list_diversity: zero vector, duplicate, one-item list", "diversity",
         {"recos": ILD_RECOS, "item_vectors": ILD_VECTORS, "k": 3},
         against({"value": ILD}, allclose("value", rtol=RTOL)), reference=False),
    Case("mean_auc", "mean_auc: ties count one half, seen items excluded", "auc",
         {"scores": AUC_SCORES, "train": AUC_TRAIN, "test": AUC_TEST},
         against({"value": 0.625}, allclose("value", rtol=RTOL)), reference=False),
    Case("itemknn_similarity", "itemknn_similarity: shrinkage 1, one neighbour, a tie", "similarity",
         {"X": KNN_X, "n_neighbours": 1, "shrinkage": 1.0},
         against({"dense": KNN_TOP1, "full": KNN_FULL}, all_of(kept_neighbours(), allclose("dense"))),
         reference=False),
    Case("itemknn_recommend", "itemknn_recommend: k = 2", "recommend", {"S": REC_S, "X": REC_X, "k": 2},
         against({"top": np.array([[1, 2], [0, 3], [0, 1], [-1, -1]])}, equal("top")), reference=False),
    Case("itemknn_recommend", "itemknn_recommend: k beyond the catalogue", "recommend",
         {"S": REC_S, "X": REC_X, "k": 6},
         against({"top": np.array([[1, 2, 3, -1], [0, 3, -1, -1], [0, 1, 2, 3], [-1, -1, -1, -1]])}, equal("top")),
         reference=False),
    Case("input_validation", "itemknn_similarity refuses a negative shrinkage", "bad_input",
         {"function": "itemknn_similarity", "inputs": {"X": KNN_X, "n_neighbours": 1, "shrinkage": -1.0}},
         raises("ValueError"), reference=False),
    Case("input_validation", "graded_ndcg_at_k refuses k = 0", "bad_input",
         {"function": "graded_ndcg_at_k", "inputs": {"recos": NDCG_RECOS, "test": NDCG_TEST, "k": 0}},
         raises("ValueError"), reference=False),
]
