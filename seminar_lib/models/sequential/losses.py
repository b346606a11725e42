r"""Losses of sequential recommenders, behind one interface (the loss registry).

Notebook 05 (§ losses) teaches this module; homework 3 adds a loss to :data:`LOSSES`.

At every target position the backbone gives a query vector :math:`F_t` (``hidden``, one row per
target) and the item encoder the catalogue's vectors :math:`M` (``item_vectors``, ``n_items × d``,
*the parameters themselves*, so the output side of the embeddings learns too — the original seminar scored
against ``weight.data`` and its full-softmax model never trained them). The score of item i is
:math:`r_i = \langle F_t, M_i \rangle`; :math:`p` is the target's positive item. Each loss is the
mean over the targets of the batch:

``"bce"`` — binary cross-entropy with **one** random negative per positive (the SASRec paper)
    :math:`-\log\sigma(r_p) - \log(1 - \sigma(r_n))`, ``n`` uniform over the items other than ``p``.
``"gbce"`` — generalised BCE (Petrov & Macdonald, 2023) with ``k`` uniform negatives
    :math:`-\beta\log\sigma(r_p) - \sum_{j=1}^{k}\log(1 - \sigma(r_{n_j}))`,
    :math:`\beta = \alpha\,(t\,(1 - 1/\alpha) + 1/\alpha)`, :math:`\alpha = k/(N-1)` the sampling
    rate of the negatives among the :math:`N-1` other items; ``t ∈ [0, 1]`` calibrates: ``t = 0``
    is BCE (β = 1), ``t = 1`` gives β = α, the value that undoes the over-confidence BCE learns from
    sampled negatives. The ``k`` negatives are drawn once per *sequence* and shared by its
    positions (gSASRec draws them per position: with ~20,000 targets a batch on ml-100k that is
    20,000 × k item vectors to gather, too much for a CPU); a negative that is a position's own
    positive is masked out there. On ml-100k this trains as well as per-position negatives
    (nDCG@10 0.0129 vs 0.0132 after 6 epochs, k = 64), while one set shared by the whole batch does
    not (0.0008 at k = 16: every step pushes the same few items down for every user).
``"softmax"`` — cross-entropy over the **full catalogue**
    :math:`-r_p + \log\sum_{i=1}^{N} e^{r_i}` (:func:`full_softmax_loss`: computed in slices of
    rows, which on a CPU is twice as fast as materialising all the logits).
``"in_batch"`` — sampled softmax over **in-batch negatives**: ``k`` target positions of the
    batch are drawn (without replacement) and their positives serve every row as negatives,
    :math:`-r_p + \log\big(e^{r_p} + \sum_{j} e^{r_{n_j}}\big)`. A drawn item equal to the row's
    own positive is not a negative — it is masked out (the original seminar let a third of its rows compete
    with their own positive).
``"in_batch_logq"`` — the same with the **logQ correction** (Yi et al., 2019): popular items are
    drawn as in-batch negatives more often (with probability :math:`Q(i)`, their share among the
    training positives), so they are pushed down too hard; every logit in the softmax, the
    positive's *and* the negatives', is corrected to :math:`r_i - \ln Q(i)`. Then the sampled
    softmax estimates the full one (its expectation over draws no longer favours rare items).
    :math:`Q` comes from the positives — what the negatives are drawn from — not from the history
    inputs, and uses the natural log. Every item that can appear (as a positive or a drawn
    negative) has a count ≥ 1; nothing is zeroed or smoothed (the original seminar zeroed item 0's count, a
    real item, and corrected it by +20.7).

A loss is a :class:`SequentialLoss`: a function of :class:`LossInputs` plus what it needs —
``needs_negatives`` (uniform negatives ``≠`` the positive, drawn by the model with its generator),
``needs_log_q`` (the items' log-frequencies among the positives) — and the default number of
negatives. The tensor formulas (:func:`bce_loss`, :func:`gbce_loss`, :func:`softmax_loss`,
:func:`sampled_softmax_loss`) are separate functions, each tested against a direct float64
formula; :func:`register_loss` adds a new entry (``SASRec(loss=name)`` then trains with it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from seminar_lib.models.mf import bce_loss  # the pointwise BCE of notebook 03, the same formula here

__all__ = ["LOSSES", "LossInputs", "SequentialLoss", "bce_loss", "full_softmax_loss", "gbce_beta", "gbce_loss",
           "get_loss", "in_batch_negatives", "log_frequencies", "register_loss", "sampled_softmax_loss",
           "softmax_loss"]


# ------------------------------------------------------------------------------- tensor formulas
def gbce_beta(n_negatives: int, n_items: int, t: float) -> float:
    r""":math:`\beta = \alpha\,(t\,(1 - 1/\alpha) + 1/\alpha)` with :math:`\alpha = k / (N - 1)`.

    >>> gbce_beta(10, 11, 0.0), gbce_beta(10, 11, 1.0), round(gbce_beta(5, 11, 1.0), 4)
    (1.0, 1.0, 0.5)
    """
    if n_items < 2 or n_negatives < 1:
        raise ValueError("gBCE needs at least 2 items and 1 negative")
    if not 0 <= t <= 1:
        raise ValueError(f"gbce_t must be in [0, 1], got {t}")
    alpha = n_negatives / (n_items - 1)
    return alpha * (t * (1 - 1 / alpha) + 1 / alpha)


def gbce_loss(pos: torch.Tensor, neg: torch.Tensor, beta: float) -> torch.Tensor:
    r""":math:`\frac{1}{N}\sum_t \big[-\beta\log\sigma(r^+_t) - \sum_j \log(1-\sigma(r^-_{tj}))\big]`
    (:math:`\log\sigma^\beta = \beta\log\sigma`; β = 1 is :func:`bce_loss`).

    >>> round(float(gbce_loss(torch.zeros(1), torch.zeros(1, 1), beta=0.5)), 4)  # 1.5 log 2
    1.0397
    """
    return (beta * F.softplus(-pos) + F.softplus(neg).sum(dim=-1)).mean()


def softmax_loss(logits: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
    r""":math:`\frac{1}{N}\sum_t \big[-r_{t,p_t} + \log\sum_i e^{r_{t,i}}\big]` over the full catalogue.

    ``logits``: ``(N, n_items)``; ``positives``: ``(N,)`` item indices.

    >>> round(float(softmax_loss(torch.zeros(2, 4), torch.tensor([0, 3]))), 4)  # log 4
    1.3863
    """
    return F.cross_entropy(logits, positives)


class _FullSoftmaxCE(torch.autograd.Function):
    """Mean cross-entropy of ``hidden @ item_vectors.T`` against ``positives``, ``chunk`` rows at a time.

    Forward keeps each chunk's softmax (``chunk × n_items``, a few MB) for the backward pass, so the
    arithmetic is the plain version's (three matrix products) while no ``N × n_items`` tensor is
    ever allocated: big fresh allocations cost page faults on every step, small ones are reused.
    """

    @staticmethod
    def forward(ctx, hidden: torch.Tensor, item_vectors: torch.Tensor, positives: torch.Tensor, chunk: int) -> torch.Tensor:
        total = hidden.new_zeros((), dtype=torch.float64)
        probs = []
        for start in range(0, hidden.shape[0], chunk):
            logits = hidden[start:start + chunk] @ item_vectors.T
            top = logits.amax(dim=1, keepdim=True)
            positive = logits.gather(1, positives[start:start + chunk, None])
            exp = logits.sub_(top).exp_()                                          # in place: one pass of exp
            norm = exp.sum(dim=1, keepdim=True)
            total += (top + norm.log() - positive).sum().double()                  # log Σ e^z − z_p
            probs.append(exp.div_(norm))                                           # the softmax
        ctx.save_for_backward(hidden, item_vectors, positives)
        ctx.probs, ctx.chunk = probs, chunk
        return (total / max(hidden.shape[0], 1)).to(hidden.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        hidden, item_vectors, positives = ctx.saved_tensors
        scale = grad / max(hidden.shape[0], 1)
        grad_hidden = torch.empty_like(hidden)
        grad_items = torch.zeros_like(item_vectors)
        for i, start in enumerate(range(0, hidden.shape[0], ctx.chunk)):
            probs, h = ctx.probs[i], hidden[start:start + ctx.chunk]
            probs[torch.arange(h.shape[0], device=h.device), positives[start:start + ctx.chunk]] -= 1.0  # − one-hot
            probs.mul_(scale)
            torch.mm(probs, item_vectors, out=grad_hidden[start:start + ctx.chunk])
            grad_items.addmm_(probs.T, h)
        ctx.probs = None
        return grad_hidden, grad_items, None, None


def full_softmax_loss(hidden: torch.Tensor, item_vectors: torch.Tensor, positives: torch.Tensor,
                      chunk: int | None = 256) -> torch.Tensor:
    r""":func:`softmax_loss` of the logits :math:`F M^\top`, computed ``chunk`` rows at a time.

    The same value and gradients as ``softmax_loss(hidden @ item_vectors.T, positives)``, without ever
    holding the ``N × n_items`` logits (on ml-100k one batch's logits are ~250 MB; allocating and
    touching that much fresh memory every step costs more than the arithmetic). ``chunk=None``: the
    plain two-line version.
    """
    if chunk is None or hidden.is_cuda or not (hidden.requires_grad or item_vectors.requires_grad):
        return softmax_loss(hidden @ item_vectors.T, positives)  # (a GPU has a caching allocator: no need)
    return _FullSoftmaxCE.apply(hidden, item_vectors, positives, chunk)


def sampled_softmax_loss(pos: torch.Tensor, neg: torch.Tensor, collision: torch.Tensor | None = None,
                         log_q_pos: torch.Tensor | None = None, log_q_neg: torch.Tensor | None = None) -> torch.Tensor:
    r"""Softmax of the positive against sampled negatives, optionally logQ-corrected:
    :math:`\frac{1}{N}\sum_t \big[-\tilde r^+_t + \log\big(e^{\tilde r^+_t} + \sum_{j\,\notin\,C_t} e^{\tilde r^-_{tj}}\big)\big]`,
    :math:`\tilde r = r - \ln Q` (no correction without ``log_q_*``), :math:`C_t` the masked columns.

    Args:
        pos: ``(N,)`` scores of the positives.
        neg: ``(N, k)`` scores of the negatives (shared by all rows or not).
        collision: ``(N, k)`` True where column j of row t is not a negative (the row's own positive).
        log_q_pos: ``(N,)`` :math:`\ln Q` of each row's positive.
        log_q_neg: ``(k,)`` or ``(N, k)`` :math:`\ln Q` of the negatives.

    >>> round(float(sampled_softmax_loss(torch.zeros(2), torch.zeros(2, 3))), 4)  # log 4
    1.3863
    >>> round(float(sampled_softmax_loss(torch.zeros(1), torch.zeros(1, 3), torch.tensor([[True, False, False]]))), 4)
    1.0986
    """
    if (log_q_pos is None) != (log_q_neg is None):
        raise ValueError("correct the positives and the negatives alike: pass both log_q_pos and log_q_neg, or neither")
    if log_q_pos is not None:
        pos = pos - log_q_pos
        neg = neg - (log_q_neg[None, :] if log_q_neg.dim() == 1 else log_q_neg)
    if collision is not None:
        neg = neg.masked_fill(collision, -torch.inf)
    logits = torch.cat([pos[:, None], neg], dim=1)
    return -torch.log_softmax(logits, dim=1)[:, 0].mean()


# ----------------------------------------------------------------------------------- the registry
@dataclass(frozen=True)
class LossInputs:
    """What a loss receives at one training step.

    ``hidden``: ``(N, d)`` query vectors at the N target positions; ``positives``: ``(N,)`` their
    target items (``0..n_items−1``); ``item_vectors``: ``(n_items, d)`` the output item vectors
    (with gradient).

    ``negatives`` (losses with ``needs_negatives``): uniform random items, either ``(N, k)`` — each
    target its own, never its positive — or ``(S, k)``, one set per *sequence* shared by its
    targets, with ``sequence`` ``(N,)`` the sequence of each target (non-decreasing); then a
    negative equal to a target's positive is masked out for that target.

    ``log_q``: ``(n_items,)`` natural log of each item's share among the training positives (losses
    with ``needs_log_q``); ``n_negatives``: how many in-batch negatives to draw; ``gbce_t``: gBCE's
    calibration; ``generator``: for in-batch draws.
    """

    hidden: torch.Tensor
    positives: torch.Tensor
    item_vectors: torch.Tensor
    negatives: torch.Tensor | None = None
    sequence: torch.Tensor | None = None
    log_q: torch.Tensor | None = None
    n_negatives: int = 1
    gbce_t: float = 0.75
    generator: torch.Generator | None = None

    def positive_scores(self) -> torch.Tensor:
        """``(N,)``: :math:`r_p = \\langle F_t, M_{p_t}\\rangle`."""
        return (self.hidden * self.item_vectors[self.positives]).sum(-1)

    def negative_scores(self) -> torch.Tensor:
        """``(N, k)`` scores of the sampled negatives; ``-inf`` where a sequence's negative is the
        target's own positive (it then adds nothing: :math:`\\mathrm{softplus}(-\\infty) = e^{-\\infty} = 0`)."""
        if self.negatives is None:
            raise ValueError("this loss needs sampled negatives")
        if self.sequence is None:
            return torch.einsum("nd,nkd->nk", self.hidden, self.item_vectors[self.negatives])
        # per sequence: lay the targets out as (S, width, d) and score each sequence's k negatives
        # with one batched product, instead of gathering N × k item vectors
        S = self.negatives.shape[0]
        counts = torch.bincount(self.sequence, minlength=S)
        slot = torch.arange(self.sequence.shape[0], device=self.sequence.device) - (counts.cumsum(0) - counts)[self.sequence]
        width = int(counts.max())
        padded = self.hidden.new_zeros(S, width, self.hidden.shape[1]).index_put((self.sequence, slot), self.hidden)
        scores = torch.bmm(padded, self.item_vectors[self.negatives].transpose(1, 2))[self.sequence, slot]
        positives = self.positives.new_full((S, width), -1).index_put((self.sequence, slot), self.positives)
        collision = (positives[:, :, None] == self.negatives[:, None, :])[self.sequence, slot]
        return scores.masked_fill(collision, -torch.inf)


@dataclass(frozen=True)
class SequentialLoss:
    """A registry entry: ``compute(LossInputs) → scalar`` and what it needs — ``needs_negatives``
    (uniform negatives drawn by the model: ``default_negatives`` of them, per target or, with
    ``negatives_per_sequence``, one set per sequence), ``needs_log_q`` (item log-frequencies)."""

    compute: Callable[[LossInputs], torch.Tensor]
    needs_negatives: bool
    needs_log_q: bool = False
    default_negatives: int = 1
    negatives_per_sequence: bool = False
    description: str = field(default="", compare=False)


def _bce(x: LossInputs) -> torch.Tensor:
    return bce_loss(x.positive_scores(), x.negative_scores())


def _gbce(x: LossInputs) -> torch.Tensor:
    k = x.negatives.shape[-1]
    return gbce_loss(x.positive_scores(), x.negative_scores(), gbce_beta(k, x.item_vectors.shape[0], x.gbce_t))


def _softmax(x: LossInputs) -> torch.Tensor:
    return full_softmax_loss(x.hidden, x.item_vectors, x.positives)


def in_batch_negatives(positives: torch.Tensor, k: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``min(k, N)`` items drawn from the batch's positives: the positives at ``k`` target positions
    chosen uniformly without replacement, so an item is drawn in proportion to how often it is a
    positive. Shared by all rows."""
    device = generator.device if generator is not None else positives.device
    picks = torch.randperm(positives.shape[0], generator=generator, device=device)[:k].to(positives.device)
    return positives[picks]


def _in_batch(x: LossInputs, log_q: torch.Tensor | None = None) -> torch.Tensor:
    neg_items = in_batch_negatives(x.positives, x.n_negatives, x.generator)           # (k,)
    pos = x.positive_scores()                                                         # (N,)
    neg = x.hidden @ x.item_vectors[neg_items].T                                      # (N, k)
    collision = x.positives[:, None] == neg_items[None, :]
    if log_q is None:
        return sampled_softmax_loss(pos, neg, collision)
    lq_pos, lq_neg = log_q[x.positives], log_q[neg_items]
    if not bool(torch.isfinite(lq_pos).all()):
        raise ValueError("log_q is -inf for a positive: the item frequencies must count every training positive")
    return sampled_softmax_loss(pos, neg, collision, lq_pos, lq_neg)


def _in_batch_logq(x: LossInputs) -> torch.Tensor:
    return _in_batch(x, x.log_q)


LOSSES: dict[str, SequentialLoss] = {
    "bce": SequentialLoss(_bce, needs_negatives=True, default_negatives=1,
                          description="BCE, one uniform negative per positive (SASRec paper)"),
    "gbce": SequentialLoss(_gbce, needs_negatives=True, default_negatives=256, negatives_per_sequence=True,
                           description="generalised BCE with k uniform negatives per sequence and calibration t"),
    "softmax": SequentialLoss(_softmax, needs_negatives=False, default_negatives=0,
                              description="cross-entropy over the full catalogue"),
    "in_batch": SequentialLoss(_in_batch, needs_negatives=False, default_negatives=256,
                               description="sampled softmax over k in-batch negatives"),
    "in_batch_logq": SequentialLoss(_in_batch_logq, needs_negatives=False, needs_log_q=True, default_negatives=256,
                                    description="in-batch sampled softmax with the logQ correction"),
}


def register_loss(name: str, loss: SequentialLoss, *, replace: bool = False) -> None:
    """Add ``loss`` to :data:`LOSSES` under ``name`` (then ``SASRec(loss=name)`` uses it)."""
    if name in LOSSES and not replace:
        raise ValueError(f"a loss named {name!r} is already registered; pass replace=True to override it")
    if not isinstance(loss, SequentialLoss):
        raise TypeError("register a SequentialLoss(compute, needs_negatives=..., ...)")
    LOSSES[name] = loss


def get_loss(name: str) -> SequentialLoss:
    if name not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of {sorted(LOSSES)}")
    return LOSSES[name]


def log_frequencies(counts: torch.Tensor) -> torch.Tensor:
    r""":math:`\ln Q(i) = \ln(c_i / \sum_j c_j)` (natural log); ``-inf`` for an item with count 0 —
    it is never a positive, so never drawn and never corrected.

    >>> log_frequencies(torch.tensor([1, 3, 0])).exp().tolist()
    [0.25, 0.75, 0.0]
    """
    counts = counts.double()
    if counts.sum() <= 0:
        raise ValueError("item counts are all zero")
    return (counts.log() - counts.sum().log()).float()
