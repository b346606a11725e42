"""Homework 1 — your implementation. Replace every ``raise NotImplementedError`` (see README.md)."""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp


def precision_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of |top-k ∩ test items| / k."""
    # TODO
    raise NotImplementedError


def recall_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of |top-k ∩ test items| / |test items|."""
    # TODO
    raise NotImplementedError


def ndcg_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of DCG@k / IDCG@k, DCG@k = Σ_{i≤k} rel_i / log2(i + 1), IDCG@k = Σ_{i≤k} 1 / log2(i + 1)."""
    # TODO
    raise NotImplementedError


def map_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of (1 / |test items|) · Σ_{i≤k} rel_i · precision@i."""
    # TODO
    raise NotImplementedError


def mrr_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    """Mean over test users of 1 / rank of the first relevant item in the top k (0 if none)."""
    # TODO
    raise NotImplementedError


def ease_fit(X: sp.csr_matrix, regularization: float) -> np.ndarray:
    """EASE weights B (n_items × n_items, float64): B_ij = −P_ij / P_jj, B_jj = 0, P = (XᵀX + λI)⁻¹, X binary."""
    # TODO
    raise NotImplementedError


def ease_recommend(B: np.ndarray, X: sp.csr_matrix, k: int) -> np.ndarray:
    """Top-k item indices (n_users × k) of X·B per row, seen items excluded, ties to the lower index."""
    # TODO
    raise NotImplementedError
