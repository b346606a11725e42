"""Homework 1 — your implementation. Replace every ``raise NotImplementedError``.

The exact definitions (formulas, edge cases, what to raise) are in ``homework/hw1_metrics_knn/README.md``
of the course repository; each docstring below repeats the formula. Check your work with
``seminar_lib.grading.public.check("hw1_metrics_knn")`` (the notebook's last cell does it).
Vectorise: no Python loop over users or items (the hidden cases run on bigger inputs with a time limit).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp


def graded_ndcg_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of DCG@k / IDCG@k with gains 2^rating − 1.

    ``recos``: user_id, item_id, rank (1 = top); ``test``: user_id, item_id, rating (≥ 0).
    DCG@k = Σ_{rank r ≤ k} (2^{rel} − 1) / log2(r + 1), rel = the user's test rating of the item (0 if absent);
    IDCG@k = the same over the user's test ratings sorted high to low at positions 1..min(k, n_u).
    A duplicated test pair counts once (highest rating); no recommendations or IDCG = 0 → 0. ValueError for k < 1.
    """
    # TODO
    raise NotImplementedError


def intra_list_diversity(recos: pl.DataFrame, item_vectors: np.ndarray, k: int) -> float:
    """Mean over users with ≥ 2 distinct items in their top k of mean_{i<j} (1 − cos(v_i, v_j)).

    ``item_id`` = row index of ``item_vectors`` (n_items × d); a zero vector has cosine 0 with everything.
    A duplicated (user, item) row counts once; 0.0 if no user has two items. ValueError for k < 1.
    """
    # TODO
    raise NotImplementedError


def mean_auc(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix) -> float:
    """Mean over users of the ROC-AUC of ``scores[u]``: positives = test items not in train, negatives = items
    in neither; AUC_u = (#{s_p > s_n} + ½ #{s_p = s_n}) / (|P_u| |N_u|), over users with |P_u|, |N_u| > 0.

    ``scores``: n_users × n_items; ``train`` / ``test``: binary, same shape. ValueError if no user has both,
    or if a score is not finite.
    """
    # TODO
    raise NotImplementedError


def itemknn_similarity(X: sp.csr_matrix, n_neighbours: int, shrinkage: float) -> sp.csr_matrix:
    """ItemKNN weights: s_ij = x_i·x_j / (‖x_i‖‖x_j‖ + λ) for items i ≠ j (x_i = column i of binary X), s_ii = 0;
    row i keeps its ``n_neighbours`` largest s_ij > 0 (ties to the lower j). A float64 n_items × n_items
    ``csr_matrix``. ValueError for n_neighbours < 1 or λ < 0.
    """
    # TODO
    raise NotImplementedError


def itemknn_recommend(S: sp.csr_matrix, X: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k item indices of each row of X·S (X binary), items seen in the row excluded, best first, ties to
    the lower index: int64, n_users × min(k, n_items), −1 where a user has fewer unseen items. ValueError for k < 1.
    """
    # TODO
    raise NotImplementedError
