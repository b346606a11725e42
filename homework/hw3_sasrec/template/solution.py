"""Homework 3 — your implementation: sampled softmax with mixed negatives and the logQ correction of the
mixture. Replace every ``raise NotImplementedError``.

The exact definitions are in ``homework/hw3_sasrec/README.md`` of the course repository; each docstring
below repeats the formula. Check your work with ``seminar_lib.grading.public.check("hw3_sasrec")`` (the
notebook's section 0 does it).
"""

from __future__ import annotations

import math  # noqa: F401 - you will probably need it

import torch

from seminar_lib.models.sequential.losses import LossInputs, SequentialLoss


def mixture_log_q(popularity: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(n_items,)`` float64 log q(i) with q(i) = α/N + (1 − α)·pop(i), pop = popularity / Σ popularity.

    ValueError for α outside [0, 1], or popularity that is not a non-empty 1-D non-negative tensor with Σ > 0.
    """
    # TODO
    raise NotImplementedError


def sample_mixed_negatives(popularity: torch.Tensor, alpha: float, k: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``(k,)`` int64 items drawn independently from q: each draw is uniform over the N items with probability α,
    else drawn in proportion to ``popularity``. Use only ``generator`` for randomness. ValueError for k < 1
    (and the α / popularity errors of :func:`mixture_log_q`)."""
    # TODO
    raise NotImplementedError


def mixed_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, collision: torch.Tensor,
                       log_q_neg: torch.Tensor) -> torch.Tensor:
    """Mean over the N targets of −r⁺ + log(e^{r⁺} + Σ_{j not masked} e^{r⁻_j − log(k·q_j)}).

    ``pos`` (N,), ``neg`` (N, k), ``collision`` (N, k) bool (True: not a negative), ``log_q_neg`` (k,).
    Numerically stable for scores in the thousands.
    """
    # TODO
    raise NotImplementedError


def registry_entry(alpha: float = 0.5, n_negatives: int = 256) -> SequentialLoss:
    """A ``SequentialLoss`` for the library's registry: ``needs_log_q=True``, ``needs_negatives=False``,
    ``default_negatives=n_negatives``; its ``compute(x)`` takes pop = exp(x.log_q), draws the batch's
    negatives with one call ``sample_mixed_negatives(pop, alpha, x.n_negatives, x.generator)``, scores them
    against every target, masks the collisions with the positives and returns :func:`mixed_softmax_loss`."""
    # TODO
    raise NotImplementedError
