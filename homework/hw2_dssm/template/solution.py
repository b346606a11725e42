"""Homework 2 — your improvements to the course's DSSM. Replace every ``raise NotImplementedError``.

The exact definitions are in ``homework/hw2_dssm/README.md`` of the course repository. Each part plugs into
``seminar_lib.models.DSSM`` through one of its hooks:

    DSSM(pairwise_loss, temperature=1.0)   # your loss instead of softmax / bpr / triplet
    DSSM(features=FeatureEmbedding)        # your feature input layer instead of the built-in one
    DSSM(tower=Tower)                      # your towers instead of the built-in MLP

Check your work with ``seminar_lib.grading.public.check("hw2_dssm")`` (the notebook's section 0 does it).
You may add helpers, classes and imports (torch, numpy, polars, scipy, seminar_lib), but not the library's
``Tower`` / ``embedding_bag`` (the grader refuses them) nor a vector-search library.
"""

from __future__ import annotations

import math  # noqa: F401 - you will probably need it
from collections.abc import Sequence

import numpy as np
import polars as pl
import torch
from torch import nn

from seminar_lib.models import DSSM, Recommender  # noqa: F401 - for make_model


# ------------------------------------------------------------------------------- 1. a pairwise loss
def pairwise_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.2, scale: float = 10.0) -> torch.Tensor:
    """The smooth multi-negative triplet loss: mean over b of (1/γ)·log(1 + Σ_j exp(γ·(neg[b, j] − pos[b] + m))),
    m = ``margin``, γ = ``scale``. ``pos`` ``(B,)``, ``neg`` ``(B, N)``; must not overflow for large γ·Δ."""
    # TODO
    raise NotImplementedError


# ------------------------------------------------------------------------ 2. learned feature embeddings
class FeatureEmbedding(nn.Module):
    """A learned ``dim``-vector per feature token, held in exactly one parameter of shape ``(size + 1, dim)``
    (row ``size`` is padding). ``forward(index, weight)`` → ``(n, dim)``: row r is Σ_l weight[r, l]·E[index[r, l]].

    ``index``: ``(n, L)`` int64 codes in ``0..size`` (``size`` = padding, weight 0); ``weight``: ``(n, L)``.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        # TODO
        raise NotImplementedError

    def forward(self, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # TODO
        raise NotImplementedError


# --------------------------------------------------------------------- 3. a tower with dropout and a norm
class Tower(nn.Module):
    """``(B, in_dim) → (B, out_dim)``: Linear(in_dim, hidden) → LayerNorm(hidden) → ReLU → Dropout(dropout) →
    Linear(hidden, out_dim), built from ``nn.Linear``, ``nn.LayerNorm`` and ``nn.Dropout`` modules, created in
    that order. (``seminar_lib.models.dropout.Dropout`` is an ``nn.Dropout`` whose mask is the same on Intel and
    AMD CPUs: with it, your saved outputs match the grader's re-execution on any machine.)"""

    def __init__(self, in_dim: int, out_dim: int, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        # TODO
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # TODO
        raise NotImplementedError


# ------------------------------------------------------------------------------------ 4. an ANN index
class AnnIndex:
    """Approximate nearest neighbours by cosine similarity: an inverted file (IVF).

    ``AnnIndex(item_vectors, ids)``: ``(n, d)`` vectors (numpy or torch) and their ``n`` ids. Partition the
    items into cells; set ``self.cell_of`` — an int array ``(n,)``: the cell of each item, in the order given.

    ``search(queries, k)``: ``(q, d)`` → ``(scores, ids)``, both ``(q, k)``: for each query, choose some cells,
    set ``self.probed`` — an int array ``(q, n_probe)`` of the cells chosen per query — and return the exact
    top ``k`` by cosine among the items of those cells, best first, with their ids (not positions).
    """

    def __init__(self, item_vectors: torch.Tensor | np.ndarray, ids: Sequence | np.ndarray | pl.Series) -> None:
        # TODO
        raise NotImplementedError

    def search(self, queries: torch.Tensor | np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        # TODO
        raise NotImplementedError


# -------------------------------------------------------------------------------------- 5. leaderboard
def make_model(users: pl.DataFrame, items: pl.DataFrame) -> Recommender:
    """Your leaderboard entry: an unfitted ``Recommender`` that is or holds a DSSM built with your parts, given
    ML-100K's user and item feature tables. The grader calls ``make_model(users, items).fit(train)`` and
    ``recommend(users, k=10)``."""
    # TODO
    raise NotImplementedError
