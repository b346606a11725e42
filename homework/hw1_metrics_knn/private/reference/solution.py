"""Homework 1 — the instructors' reference solution (never handed to students: ``private/`` is left out of
the student release). The hidden cases compare a submission's results with this module's on inputs the
students never see; every definition is the one in ``homework/hw1_metrics_knn/README.md``.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from scipy.stats import rankdata

from seminar_lib.topk import topk_deterministic


def _positive_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    return int(k)


def _top_rows(recos: pl.DataFrame, k: int) -> pl.DataFrame:
    """``recos`` rows with ``rank <= k``, one row per (user, item) at its best rank."""
    for column in ("user_id", "item_id", "rank"):
        if column not in recos.columns:
            raise ValueError(f"recos needs the columns user_id, item_id, rank; {column!r} is missing")
    return (recos.select("user_id", "item_id", "rank").filter(pl.col("rank") <= k)
            .group_by("user_id", "item_id").agg(pl.col("rank").min()))


def graded_ndcg_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of DCG@k / IDCG@k with graded gains 2^rating − 1.

    DCG@k = Σ_{rows with rank r ≤ k} (2^{rel} − 1) / log2(r + 1), rel = the user's test rating of the
    item (0 if it is not in the user's test); IDCG@k = the same sum over the user's own test ratings
    sorted high to low, at positions 1..min(k, n_u). A duplicated test pair counts once, with its
    highest rating; a user whose IDCG is 0 (all ratings 0) or who got no recommendations scores 0.
    """
    k = _positive_k(k)
    if "rating" not in test.columns:
        raise ValueError("test needs a rating column (the graded relevance)")
    if test.height and test["rating"].min() < 0:
        raise ValueError("ratings must be >= 0 (the gain is 2^rating - 1)")
    truth = (test.select("user_id", "item_id", pl.col("rating").cast(pl.Float64))
             .group_by("user_id", "item_id").agg(pl.col("rating").max()))
    if truth.is_empty():
        raise ValueError("test is empty: nothing to evaluate")
    gain = (2.0 ** pl.col("rating") - 1.0)
    ideal = (truth.with_columns(pl.col("rating").rank("ordinal", descending=True).over("user_id").alias("pos"))
             .filter(pl.col("pos") <= k)
             .group_by("user_id").agg((gain / (pl.col("pos") + 1).cast(pl.Float64).log(2)).sum().alias("idcg")))
    dcg = (_top_rows(recos, k).join(truth, on=["user_id", "item_id"], how="inner")
           .group_by("user_id").agg((gain / (pl.col("rank") + 1).cast(pl.Float64).log(2)).sum().alias("dcg")))
    per_user = ideal.join(dcg, on="user_id", how="left").select(
        pl.when(pl.col("idcg") > 0).then(pl.col("dcg").fill_null(0.0) / pl.col("idcg")).otherwise(0.0))
    return float(per_user.to_series().mean())


def intra_list_diversity(recos: pl.DataFrame, item_vectors: np.ndarray, k: int) -> float:
    """Mean over users with at least two distinct items in their top k of the mean pairwise cosine
    distance 1 − cos(v_i, v_j) over the unordered pairs i < j of those items.

    ``item_id`` values are row indices of ``item_vectors`` (``n_items × d``); a zero vector has cosine 0
    with everything (distance 1). A duplicated (user, item) row counts once. 0.0 if no user has two items.
    Vectorised with Σ_{i<j} cos(v_i, v_j) = (‖Σ_i v̂_i‖² − Σ_i ‖v̂_i‖²) / 2, v̂ = v / ‖v‖ (0 for v = 0).
    """
    k = _positive_k(k)
    vectors = np.asarray(item_vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"item_vectors must be 2-D (n_items × d), got shape {vectors.shape}")
    rows = _top_rows(recos, k)
    items = rows["item_id"].to_numpy()
    if items.size and (items.min() < 0 or items.max() >= len(vectors)):
        raise ValueError(f"item_id values must be row indices of item_vectors (0..{len(vectors) - 1})")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit = np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)
    users, user_index = np.unique(rows["user_id"].to_numpy(), return_inverse=True)
    n = np.bincount(user_index, minlength=len(users)).astype(np.float64)
    summed = np.zeros((len(users), vectors.shape[1]))
    np.add.at(summed, user_index, unit[items])
    self_sq = np.bincount(user_index, weights=(unit[items] ** 2).sum(axis=1), minlength=len(users))
    pairs = n * (n - 1) / 2
    keep = n >= 2
    if not keep.any():
        return 0.0
    mean_cos = ((summed[keep] ** 2).sum(axis=1) - self_sq[keep]) / 2 / pairs[keep]
    return float(np.mean(1.0 - mean_cos))


def _binary(matrix: sp.spmatrix, shape: tuple[int, int] | None, what: str) -> sp.csr_matrix:
    if not sp.issparse(matrix):
        raise ValueError(f"{what} must be a scipy.sparse matrix")
    if shape is not None and matrix.shape != shape:
        raise ValueError(f"{what} has shape {matrix.shape}, expected {shape}")
    out = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    out.sum_duplicates()
    out.data = (out.data != 0).astype(np.float64)
    out.eliminate_zeros()
    return out


def mean_auc(scores: np.ndarray, train: sp.csr_matrix, test: sp.csr_matrix) -> float:
    """Mean over users of the ROC-AUC of ``scores[u]`` separating held-out positives from unseen items.

    Positives P_u: items in ``test[u]`` and not in ``train[u]``; negatives N_u: items in neither.
    AUC_u = (#{(p, n): s_p > s_n} + ½·#{(p, n): s_p = s_n}) / (|P_u|·|N_u|); the mean runs over the users
    with |P_u| > 0 and |N_u| > 0. ValueError if no user has both, or if a score is not finite.
    Vectorised by Mann–Whitney: AUC_u = (R_P − |P|(|P| + 1)/2) / (|P||N|), R_P the sum of the positives'
    average ranks among P ∪ N (seen items are ranked at −∞, below everything, and their ranks subtracted).
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D (n_users × n_items), got shape {scores.shape}")
    if not np.isfinite(scores).all():
        raise ValueError("scores must be finite")
    seen = _binary(train, scores.shape, "train").toarray().astype(bool)
    positive = _binary(test, scores.shape, "test").toarray().astype(bool) & ~seen
    n_pos = positive.sum(axis=1)
    n_neg = (~seen & ~positive).sum(axis=1)
    users = (n_pos > 0) & (n_neg > 0)
    if not users.any():
        raise ValueError("no user has both a held-out positive and an unseen non-positive item")
    s, pos, seen, n_pos, n_neg = scores[users], positive[users], seen[users], n_pos[users], n_neg[users]
    ranks = rankdata(np.where(seen, -np.inf, s), method="average", axis=1) - seen.sum(axis=1, keepdims=True)
    rank_sum = np.where(pos, ranks, 0.0).sum(axis=1)
    auc = (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return float(auc.mean())


def itemknn_similarity(X: sp.csr_matrix, n_neighbours: int, shrinkage: float) -> sp.csr_matrix:
    """Item-item cosine with shrinkage, pruned to each item's ``n_neighbours`` most similar items.

    X is users × items, binary (every stored non-zero counts as 1); x_i is item i's column.
    s_ij = x_i·x_j / (‖x_i‖‖x_j‖ + λ) for i ≠ j, s_ii = 0 (0 when the denominator is 0). Row i of the
    result keeps the ``n_neighbours`` largest s_ij > 0 (ties to the lower j) and drops the rest:
    a float64 ``csr_matrix`` (n_items × n_items) with no stored zeros.
    """
    if isinstance(n_neighbours, bool) or not isinstance(n_neighbours, (int, np.integer)) or n_neighbours < 1:
        raise ValueError(f"n_neighbours must be a positive integer, got {n_neighbours!r}")
    if not np.isfinite(shrinkage) or shrinkage < 0:
        raise ValueError(f"shrinkage must be a finite number >= 0, got {shrinkage!r}")
    binary = _binary(X, None, "X")
    gram = (binary.T @ binary).toarray()
    norms = np.sqrt(np.diag(gram).copy())
    denominator = norms[:, None] * norms[None, :] + shrinkage
    sim = np.divide(gram, denominator, out=np.zeros_like(gram), where=denominator > 0)
    np.fill_diagonal(sim, 0.0)
    n_items = sim.shape[0]
    keep = min(int(n_neighbours), n_items)
    if n_items == 0:
        return sp.csr_matrix((0, 0), dtype=np.float64)
    values, cols = topk_deterministic(torch.from_numpy(sim), keep)
    values, cols = values.numpy(), cols.numpy()
    rows = np.repeat(np.arange(n_items), keep)
    mask = values.ravel() > 0
    return sp.csr_matrix((values.ravel()[mask], (rows[mask], cols.ravel()[mask])), shape=(n_items, n_items))


def itemknn_recommend(S: sp.csr_matrix, X: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k item indices per row of X·S (X binary), items already in the row excluded, best first,
    ties to the lower index: an int64 array ``n_users × min(k, n_items)``; places beyond a user's
    number of unseen items are −1."""
    k = _positive_k(k)
    binary = _binary(X, None, "X")
    if not sp.issparse(S) or S.shape != (binary.shape[1], binary.shape[1]):
        raise ValueError(f"S must be a sparse n_items × n_items matrix ({binary.shape[1]} items), got {getattr(S, 'shape', None)}")
    scores = torch.from_numpy(np.asarray((binary @ sp.csr_matrix(S, dtype=np.float64)).todense()))
    seen = binary.tocoo()
    scores[seen.row, seen.col] = -torch.inf
    values, top = topk_deterministic(scores, k)
    return torch.where(torch.isinf(values), -1, top).numpy().astype(np.int64)
