"""Homework 1 — the instructors' reference solution (never handed to students; see homework/README.md).

It delegates to seminar_lib, the course's single tested implementation, so the hidden tests check
students against exactly the code the notebooks use.
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from seminar_lib.metrics import map_at_k as _map
from seminar_lib.metrics import mrr, ndcg, precision, recall
from seminar_lib.models.ease import ease_weights, gram_matrix
from seminar_lib.topk import topk_deterministic


def precision_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    return precision(recos, test, k)


def recall_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    return recall(recos, test, k)


def ndcg_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    return ndcg(recos, test, k)


def map_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    return _map(recos, test, k)


def mrr_at_k(recos: pl.DataFrame, test: pl.DataFrame, k: int) -> float:
    return mrr(recos, test, k)


def ease_fit(X: sp.csr_matrix, regularization: float) -> np.ndarray:
    if not regularization > 0:
        raise ValueError(f"regularization must be > 0, got {regularization}")
    return ease_weights(gram_matrix(X, binary=True, dtype=torch.float64), regularization).numpy()


def ease_recommend(B: np.ndarray, X: sp.csr_matrix, k: int) -> np.ndarray:
    binary = (X != 0).astype(np.float64)
    scores = torch.from_numpy(binary @ B)
    seen = binary.tocoo()
    scores[seen.row, seen.col] = -torch.inf
    return topk_deterministic(scores, k)[1].numpy()
