"""Homework 2 — your improvements to the course's DSSM. Replace every ``raise NotImplementedError`` (see README.md).

Each part plugs into ``seminar_lib.models.DSSM`` through one of its hooks:

    DSSM(loss=pairwise_loss)          # your loss instead of softmax / bpr / triplet
    DSSM(features=FeatureEmbedding)   # your feature input layer instead of the built-in one
    DSSM(tower=make_tower)            # your towers instead of the built-in MLP

You may add helpers, classes and imports (torch, numpy, polars, scipy, scikit-learn, seminar_lib).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import torch
from torch import nn

from seminar_lib.models import DSSM, Recommender  # noqa: F401 - for make_model


# ------------------------------------------------------------------------------- 1. a pairwise loss
def pairwise_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """A loss on the similarities of positives ``pos`` (``(B,)``) and of their sampled negatives
    ``neg`` (``(B, N)``) — scaled by the DSSM's temperature — returning one scalar tensor that is
    lower when the positives score above their negatives. Not the library's BPR or triplet loss."""
    # TODO
    raise NotImplementedError


# ------------------------------------------------------------------------ 2. learned feature embeddings
class FeatureEmbedding(nn.Module):
    """A learned ``dim``-vector per feature token: ``forward(index, weight)`` returns, for each row,
    ``Σ_l weight[r, l] · E[index[r, l]]`` — the row of the one-hot / multi-hot matrix times the
    table ``E`` — without building that matrix.

    ``index``: ``(n, L)`` int64 token codes in ``0..size``, where ``size`` marks padding (its weight
    is always 0); ``weight``: ``(n, L)`` float32. Returns ``(n, dim)``.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        # TODO
        raise NotImplementedError

    def forward(self, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # TODO
        raise NotImplementedError


# --------------------------------------------------------------------- 3. towers with dropout and a norm
def make_tower(in_dim: int, out_dim: int) -> nn.Module:
    """A tower ``(B, in_dim) → (B, out_dim)`` with dropout and a normalization layer (as modules)."""
    # TODO
    raise NotImplementedError


# ------------------------------------------------------------------------------------ 4. ANN retrieval
class AnnIndex:
    """Approximate nearest neighbours by cosine similarity over item vectors.

    ``AnnIndex(item_vectors, ids)``: ``item_vectors`` ``(n, d)`` (a torch tensor or numpy array),
    ``ids`` the ``n`` item ids (a list, numpy array or polars Series).

    ``search(queries, k)``: queries ``(q, d)`` → ``(scores, ids)``, both ``(q, k)``: the cosine
    similarities, best first, and the ids (as given, not positions) of the items found.

    ``candidates_examined``: after a search, the number of item vectors it scored for each query
    (an array of ``q`` counts) — ``n`` for an exact search.
    """

    def __init__(self, item_vectors: torch.Tensor | np.ndarray, ids: Sequence | np.ndarray | pl.Series) -> None:
        # TODO
        raise NotImplementedError

    def search(self, queries: torch.Tensor | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        # TODO
        raise NotImplementedError


# -------------------------------------------------------------------------------------- 5. leaderboard
def make_model(users: pl.DataFrame, items: pl.DataFrame) -> Recommender:
    """Your leaderboard entry: an unfitted seminar_lib Recommender that is, or holds as an attribute,
    a DSSM (``users`` / ``items``: ml-100k's feature tables)."""
    # TODO
    raise NotImplementedError
