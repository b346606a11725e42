"""Homework 3 — the instructors' reference solution (never handed to students: ``private/`` is left out of
the student release). Sampled softmax with mixed negatives, corrected by the log of the mixture proposal;
every definition is the one in ``homework/hw3_sasrec/README.md``.
"""

from __future__ import annotations

import math

import torch

from seminar_lib.models.sequential.losses import LossInputs, SequentialLoss


def _check_alpha(alpha: float) -> float:
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    return float(alpha)


def _check_popularity(popularity: torch.Tensor) -> torch.Tensor:
    popularity = torch.as_tensor(popularity, dtype=torch.float64)
    if popularity.dim() != 1 or popularity.numel() == 0:
        raise ValueError(f"popularity must be a non-empty 1-D tensor, got shape {tuple(popularity.shape)}")
    if not bool(torch.isfinite(popularity).all()) or bool((popularity < 0).any()):
        raise ValueError("popularity must be finite and non-negative")
    total = popularity.sum()
    if not total > 0:
        raise ValueError("popularity sums to 0")
    return popularity / total


def mixture_log_q(popularity: torch.Tensor, alpha: float) -> torch.Tensor:
    """``(n_items,)`` float64: log q(i), q(i) = α/N + (1 − α)·pop(i), pop = popularity / Σ popularity."""
    alpha = _check_alpha(alpha)
    pop = _check_popularity(popularity)
    return torch.log(alpha / pop.numel() + (1.0 - alpha) * pop)


def sample_mixed_negatives(popularity: torch.Tensor, alpha: float, k: int,
                           generator: torch.Generator | None = None) -> torch.Tensor:
    """``(k,)`` int64 item indices, drawn independently: with probability α uniform over the N items, else
    in proportion to ``popularity`` (so each draw follows q of :func:`mixture_log_q`)."""
    alpha = _check_alpha(alpha)
    pop = _check_popularity(popularity)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive integer, got {k!r}")
    device = generator.device if generator is not None else pop.device
    uniform = torch.rand(k, generator=generator, device=device, dtype=torch.float64) < alpha
    by_uniform = torch.randint(0, pop.numel(), (k,), generator=generator, device=device)
    by_popularity = torch.multinomial(pop.to(device), k, replacement=True, generator=generator)
    return torch.where(uniform, by_uniform, by_popularity).to(pop.device)


def mixed_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, collision: torch.Tensor,
                       log_q_neg: torch.Tensor) -> torch.Tensor:
    """Mean over the N targets of −r⁺ + log(e^{r⁺} + Σ_{j not masked} e^{r⁻_j − log(k·q_j)}).

    ``pos`` (N,), ``neg`` (N, k), ``collision`` (N, k) bool (True: column j is row t's own positive, not a
    negative), ``log_q_neg`` (k,) log q of the drawn negatives. The positive is not corrected: the sum
    over the k draws, each weighted 1/(k·q_j), estimates the rest of the softmax's denominator.
    """
    k = neg.shape[-1]
    corrected = (neg - (log_q_neg + math.log(k))[None, :]).masked_fill(collision, -torch.inf)
    logits = torch.cat([pos[:, None], corrected], dim=1)
    return (torch.logsumexp(logits, dim=1) - pos).mean()


def mixed_negatives_loss(x: LossInputs, alpha: float) -> torch.Tensor:
    """The registry's ``compute``: pop(i) = exp(x.log_q) (the items' shares among the training positives),
    ``x.n_negatives`` negatives shared by the batch, drawn with ``x.generator``, then :func:`mixed_softmax_loss`."""
    popularity = x.log_q.double().exp()
    log_q = mixture_log_q(popularity, alpha)
    negatives = sample_mixed_negatives(popularity, alpha, x.n_negatives, x.generator).to(x.positives.device)
    pos = (x.hidden * x.item_vectors[x.positives]).sum(-1)
    neg = x.hidden @ x.item_vectors[negatives].T
    collision = x.positives[:, None] == negatives[None, :]
    return mixed_softmax_loss(pos, neg, collision, log_q[negatives].to(neg.dtype))


def registry_entry(alpha: float = 0.5, n_negatives: int = 256) -> SequentialLoss:
    """The loss as a :class:`SequentialLoss` (register it with ``register_loss(name, registry_entry(α))``)."""
    alpha = _check_alpha(alpha)
    return SequentialLoss(lambda x: mixed_negatives_loss(x, alpha), needs_negatives=False, needs_log_q=True,
                          default_negatives=n_negatives,
                          description=f"sampled softmax, {n_negatives} mixed negatives (α = {alpha:g}), logQ of the mixture")
