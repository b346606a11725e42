"""Homework 3 — the instructors' reference solution (never handed to students; see homework/README.md).

Written out (not imported from the library) because the hidden tests check that a solution does not
depend on the library's versions of these functions; the tests compare it with them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from seminar_lib.models.sequential.losses import LossInputs, in_batch_negatives


def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    if not 0 <= t <= 1:
        raise ValueError(f"t must be in [0, 1], got {t}")
    alpha = n_negatives / (n_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def gbce_loss(pos: torch.Tensor, neg: torch.Tensor, beta: float) -> torch.Tensor:
    return (beta * F.softplus(-pos) + F.softplus(neg).sum(dim=-1)).mean()


def sampled_softmax_logq(pos: torch.Tensor, neg: torch.Tensor, collision: torch.Tensor, log_q_pos: torch.Tensor,
                         log_q_neg: torch.Tensor) -> torch.Tensor:
    corrected_pos = pos - log_q_pos
    corrected_neg = (neg - log_q_neg[None, :]).masked_fill(collision, -torch.inf)
    logits = torch.cat([corrected_pos[:, None], corrected_neg], dim=1)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


def in_batch_logq(x: LossInputs) -> torch.Tensor:
    negatives = in_batch_negatives(x.positives, x.n_negatives, x.generator)
    pos = (x.hidden * x.item_vectors[x.positives]).sum(-1)
    neg = x.hidden @ x.item_vectors[negatives].T
    collision = x.positives[:, None] == negatives[None, :]
    return sampled_softmax_logq(pos, neg, collision, x.log_q[x.positives], x.log_q[negatives])
