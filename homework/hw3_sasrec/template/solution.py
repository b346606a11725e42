"""Homework 3 — your implementation of two SASRec losses. Replace every ``raise NotImplementedError``."""

from __future__ import annotations

import torch
import torch.nn.functional as F  # noqa: F401 - you will need softplus / log_softmax

from seminar_lib.models.sequential.losses import LossInputs, in_batch_negatives  # noqa: F401


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    """β = α·(t·(1 − 1/α) + 1/α), α = n_negatives / (n_items − 1)."""
    # TODO
    raise NotImplementedError


def gbce_loss(pos: torch.Tensor, neg: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean over the N targets of −β·log σ(pos) − Σ_j log(1 − σ(neg_j)); pos (N,), neg (N, k)."""
    # TODO
    raise NotImplementedError


def sampled_softmax_logq(pos: torch.Tensor, neg: torch.Tensor, collision: torch.Tensor, log_q_pos: torch.Tensor,
                         log_q_neg: torch.Tensor) -> torch.Tensor:
    """Softmax of the logQ-corrected positive against the corrected, unmasked negatives (mean over targets)."""
    # TODO
    raise NotImplementedError


def in_batch_logq(x: LossInputs) -> torch.Tensor:
    """The registry entry: in-batch negatives, collisions masked, logQ-corrected sampled softmax."""
    # TODO
    raise NotImplementedError
