r"""The losses of the two-tower model, behind one interface (:class:`DSSMLoss`, like the sequential
models' :class:`~seminar_lib.models.sequential.losses.SequentialLoss`).

**Losses** (:data:`LOSSES`; ``s⁺`` the score of the positive, ``s⁻_j`` of sampled negatives, ``B``
the batch, ``N`` the negatives per positive, :math:`\tau` the temperature):

* ``"triplet"``: :math:`\frac{1}{BN}\sum_b\sum_j \max(0,\; m - s^+_b + s^-_{bj})` with margin ``m`` on
  the raw similarity (for unit vectors :math:`\lVert u - v\rVert^2 = 2 - 2\cos`, so this is the original seminar's
  squared-distance triplet with margin ``2m``) — every encoded negative is used;
* ``"bpr"``: :math:`\frac{1}{BN}\sum_b\sum_j -\log\sigma\big((s^+_b - s^-_{bj})/\tau\big)` (the original seminar's
  "bpr" was :math:`1 - \sigma(\Delta\cos)`: bounded, with a vanishing gradient, not BPR);
* ``"softmax"``: sampled softmax over in-batch negatives with the logQ correction (Yi et al.,
  2019): with :math:`p_c` the positive of row ``c`` and :math:`q(i)` the share of item ``i`` among
  the training positives (the probability that a batch row carries ``i``),

  .. math:: L = -\frac{1}{B}\sum_b \log \frac{\exp(s_{b,p_b}/\tau - \log q(p_b))}
                 {\sum_{c \in C_b} \exp(s_{b,p_c}/\tau - \log q(p_c))},
            \qquad C_b = \{b\} \cup \{c : p_c \ne p_b\}

  — popular items appear in many rows and would otherwise be pushed down as negatives far more
  often than uniform sampling would; subtracting :math:`\log q` undoes that bias. Rows whose item
  is the row's own positive (another user's copy of it) are masked, not treated as negatives.
  (Training computes the same value on the batch's distinct items: :func:`in_batch_softmax_loss_unique`.)
* **your own** (homework 2): ``DSSM(loss=fn)`` with any callable ``fn(pos (B,), neg (B, N)) → scalar
  tensor`` — it gets the sampled negatives like ``bpr``, and the similarities divided by the
  temperature (``temperature=1.0`` gives it the raw ones); a :class:`DSSMLoss` with
  ``needs_negatives=True`` chooses ``scaled`` itself. See :func:`resolve_loss`.

A loss is a :class:`DSSMLoss`: ``compute(batch)`` of one batch's :class:`TowerBatch` (the users'
vectors, the batch's distinct item vectors, where each positive and negative sits among them), plus
``needs_negatives`` (the model samples ``n_negatives`` per positive) and ``scaled`` (the similarities
it sees are divided by the temperature). A pairwise loss ``fn(pos (B,), neg (B, N))`` is a plain
:class:`DSSMLoss`; :class:`TripletLoss` adds the model's margin, :class:`InBatchSoftmaxLoss` works on
the in-batch logits instead of sampled negatives. The model calls ``compute`` and never asks which loss it has.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import torch
import torch.nn.functional as F

from seminar_lib.models.mf import bpr_loss


# ------------------------------------------------------------------------------------- formulas
def triplet_loss(pos: torch.Tensor, neg: torch.Tensor, margin: float = 0.5) -> torch.Tensor:
    r"""Triplet (hinge) loss on similarities: :math:`\frac{1}{BN}\sum_{b,j}\max(0,\, m - s^+_b + s^-_{bj})`.

    ``pos``: ``(B,)`` similarities of the positives; ``neg``: ``(B, N)`` of the negatives (all used).

    >>> round(float(triplet_loss(torch.tensor([0.9, 0.1]), torch.tensor([[0.2, 0.5], [0.0, 0.3]]), margin=0.5)), 4)
    0.3
    """
    return F.relu(margin - pos[:, None] + neg).mean()


def hard_negative_bpr_loss(pos: torch.Tensor, neg: torch.Tensor, keep: int = 4) -> torch.Tensor:
    r"""BPR on the ``keep`` *hardest* sampled negatives (in-sample hard-negative mining).

    Of the ``N`` uniform negatives of each row (``neg``: ``(B, N)`` scores), only the ``keep`` the model
    currently scores highest enter :func:`~seminar_lib.models.mf.bpr_loss`:
    :math:`\frac{1}{B\,h}\sum_b\sum_{j \in \operatorname{top}_h(s^-_b)} -\log\sigma(s^+_b - s^-_{bj})`,
    ``h = min(keep, N)``. The easy negatives, already far below the positive, are dropped; the
    gradient goes to the ones the model confuses with the positive. Use it as
    ``DSSM(functools.partial(hard_negative_bpr_loss, keep=4), n_negatives=16)``.

    >>> round(float(hard_negative_bpr_loss(torch.zeros(1), torch.tensor([[-9.0, 0.0, -9.0]]), keep=1)), 4)  # log 2
    0.6931
    """
    if neg.dim() != 2 or pos.shape != neg.shape[:1]:
        raise ValueError(f"pos must be (B,) and neg (B, N), got {tuple(pos.shape)} and {tuple(neg.shape)}")
    if keep < 1:
        raise ValueError(f"keep must be positive, got {keep}")
    return bpr_loss(pos, neg.topk(min(keep, neg.shape[1]), dim=1).values)


def in_batch_softmax_loss(logits: torch.Tensor, positives: torch.Tensor,
                          log_q: torch.Tensor | None = None) -> torch.Tensor:
    r"""Sampled softmax over in-batch negatives, with the logQ correction.

    Args:
        logits: ``(B, B)``, ``logits[b, c]`` = score of user ``b`` with the positive item of row ``c``
            (already divided by the temperature); the diagonal holds the true pairs.
        positives: ``(B,)`` item index of each row's positive; where ``positives[c] == positives[b]``
            for ``c ≠ b`` the entry is masked (it is ``b``'s own positive, not a negative).
        log_q: ``(B,)`` :math:`\log q(p_c)`, the log-share of row ``c``'s item among the training
            positives, subtracted from column ``c`` (the true pair included); None: no correction.

    Returns: :math:`-\frac{1}{B}\sum_b \log\operatorname{softmax}_c(\text{logits}_{bc} - \log q_c)[b]`
    over the unmasked columns.

    >>> round(float(in_batch_softmax_loss(torch.zeros(3, 3), torch.tensor([0, 1, 2]))), 4)  # log 3
    1.0986
    >>> round(float(in_batch_softmax_loss(torch.zeros(3, 3), torch.tensor([0, 0, 2]))), 4)  # (2 log 2 + log 3)/3
    0.8283
    """
    if logits.dim() != 2 or logits.shape[0] != logits.shape[1] or positives.shape != logits.shape[:1]:
        raise ValueError(f"logits must be (B, B) and positives (B,), got {tuple(logits.shape)} "
                         f"and {tuple(positives.shape)}")
    if log_q is not None:
        logits = logits - log_q[None, :]
    collision = positives[:, None] == positives[None, :]
    collision.fill_diagonal_(False)
    logits = logits.masked_fill(collision, -torch.inf)
    return F.cross_entropy(logits, torch.arange(logits.shape[0], device=logits.device))


def in_batch_softmax_loss_unique(logits: torch.Tensor, inverse: torch.Tensor, counts: torch.Tensor,
                                 log_q: torch.Tensor | None = None) -> torch.Tensor:
    r""":func:`in_batch_softmax_loss` computed on the batch's *distinct* positive items — the same value
    with ``K ≤ B`` columns instead of ``B`` (the training loop's fast path; tested equal).

    Args:
        logits: ``(B, K)`` scores (divided by the temperature) of user ``b`` with distinct item ``k``.
        inverse: ``(B,)`` column of each row's own positive; ``counts``: ``(K,)`` rows per item ``m_k``.
        log_q: ``(K,)`` :math:`\log q` of the distinct items, or None.

    With :math:`l_{bk} = \text{logits}_{bk} - \log q_k`, the ``B``-column denominator of row ``b`` sums
    item ``k`` once per row that carries it, i.e. :math:`m_k` times — except the row's own item,
    whose other copies are masked: :math:`\sum_{k} m_k e^{l_{bk}} - (m_{k_b} - 1)\, e^{l_{bk_b}}`.
    """
    log_m = counts.to(logits.dtype).log()
    bias = log_m if log_q is None else log_m - log_q
    shifted = logits + bias[None, :]                                   # l_bk + log m_k
    own = logits.gather(1, inverse[:, None]).squeeze(1)                # (B,)
    if log_q is not None:
        own = own - log_q[inverse]                                     # l_{b k_b}
    lse_all = torch.logsumexp(shifted, dim=1)                          # log Σ_k m_k e^{l_bk}
    extra = (counts[inverse] - 1).to(logits.dtype)
    lse = lse_all + torch.log1p(-extra * torch.exp(own - lse_all))     # drop the m−1 masked copies
    return (lse - own).mean()


# ------------------------------------------------------------------------------------ interface
@dataclass(frozen=True)
class TowerBatch:
    r"""The tower outputs of one training batch, as a loss needs them.

    ``user``: ``(B, d)`` user vectors (normalized for cosine); ``items``: ``(K, d)`` vectors of the
    batch's distinct wanted items — the ``B`` positives, then (``needs_negatives``) the ``B·N``
    negatives; ``inverse``: ``(B + B·N,)`` or ``(B,)`` the row of ``items`` of each wanted item;
    ``counts``: ``(K,)`` how often each distinct item is wanted; ``scale``: ``1/τ`` or 1;
    ``n_negatives``: ``N``; ``log_q``: ``(K,)`` :math:`\log q` of the distinct items or None (no
    correction); ``margin``: the triplet margin.
    """

    user: torch.Tensor
    items: torch.Tensor
    inverse: torch.Tensor
    counts: torch.Tensor
    scale: float
    n_negatives: int
    log_q: torch.Tensor | None
    margin: float

    @cached_property
    def wanted(self) -> torch.Tensor:
        """``(B + B·N, d)``: the vector of every wanted item (one gather, so one backward pass for both)."""
        return self.items[self.inverse]

    def positive_scores(self) -> torch.Tensor:
        """``(B,)`` scaled similarities of the positives."""
        return self.scale * (self.user * self.wanted[: self.user.shape[0]]).sum(-1)

    def negative_scores(self) -> torch.Tensor:
        """``(B, N)`` scaled similarities of the sampled negatives."""
        b = self.user.shape[0]
        negatives = self.wanted[b:].reshape(b, self.n_negatives, -1)                 # (B, N, d)
        return self.scale * torch.einsum("bd,bnd->bn", self.user, negatives)


@dataclass(frozen=True)
class DSSMLoss:
    """A loss of the registry: ``fn(pos (B,), neg (B, N)) → scalar`` on the sampled negatives' and the
    positives' similarities; ``needs_negatives``: the model samples negatives for it; ``scaled``: the
    similarities are divided by the temperature (``bpr``, ``softmax``) or raw (``triplet``, whose
    margin is on the similarity scale). Subclasses change :meth:`compute`."""

    fn: Callable[..., torch.Tensor]
    needs_negatives: bool
    scaled: bool

    def compute(self, batch: TowerBatch) -> torch.Tensor:
        """The batch's loss: ``fn(batch.positive_scores(), batch.negative_scores())``, a scalar tensor."""
        loss = self.fn(batch.positive_scores(), batch.negative_scores())
        if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
            got = f"shape {tuple(loss.shape)}" if isinstance(loss, torch.Tensor) else type(loss).__name__
            raise ValueError(f"the loss {loss_name(self)} must return a scalar tensor, got {got}")
        return loss


@dataclass(frozen=True)
class TripletLoss(DSSMLoss):
    """:func:`triplet_loss` with the model's ``margin``."""

    def compute(self, batch: TowerBatch) -> torch.Tensor:
        return self.fn(batch.positive_scores(), batch.negative_scores(), batch.margin)


@dataclass(frozen=True)
class InBatchSoftmaxLoss(DSSMLoss):
    """The in-batch softmax: :func:`in_batch_softmax_loss` computed on the batch's distinct items
    (:func:`in_batch_softmax_loss_unique`), no sampled negatives."""

    def compute(self, batch: TowerBatch) -> torch.Tensor:
        logits = (batch.scale * batch.user) @ batch.items.T                          # (B, K)
        return in_batch_softmax_loss_unique(logits, batch.inverse, batch.counts, batch.log_q)


LOSSES: dict[str, DSSMLoss] = {
    "triplet": TripletLoss(triplet_loss, needs_negatives=True, scaled=False),
    "bpr": DSSMLoss(bpr_loss, needs_negatives=True, scaled=True),
    "softmax": InBatchSoftmaxLoss(in_batch_softmax_loss, needs_negatives=False, scaled=True),
}

LossSpec = str | DSSMLoss | Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def resolve_loss(loss: LossSpec) -> DSSMLoss:
    """The :class:`DSSMLoss` that ``DSSM(loss=...)`` trains with.

    ``loss``: a name in :data:`LOSSES`; a :class:`DSSMLoss` with ``needs_negatives=True`` (its ``fn``
    is called as ``fn(pos, neg)``); or any callable ``fn(pos, neg) → scalar tensor`` — a *pairwise*
    loss on the similarities of the positives ``pos`` (``(B,)``) and of the sampled negatives ``neg``
    (``(B, n_negatives)``), divided by the temperature (as ``bpr``'s).

    >>> resolve_loss("bpr").scaled, resolve_loss(lambda pos, neg: (neg - pos[:, None]).mean()).needs_negatives
    (True, True)
    """
    if isinstance(loss, str):
        if loss not in LOSSES:
            raise ValueError(f"unknown loss {loss!r}; choose one of {sorted(LOSSES)} or pass a callable "
                             "fn(pos (B,), neg (B, N)) -> scalar tensor")
        return LOSSES[loss]
    if isinstance(loss, DSSMLoss):
        if not loss.needs_negatives:
            raise ValueError("a custom DSSMLoss must be pairwise (needs_negatives=True): it is called as "
                             "fn(pos (B,), neg (B, N)); the in-batch softmax is loss='softmax'")
        return loss
    if callable(loss):
        return DSSMLoss(loss, needs_negatives=True, scaled=True)
    raise ValueError(f"loss must be a name in {sorted(LOSSES)}, a DSSMLoss or a callable fn(pos, neg), got {loss!r}")


def loss_name(loss: LossSpec) -> str:
    """A short name of a loss for ``DSSM.name``: the registry key, or the function's name."""
    if isinstance(loss, str):
        return loss
    fn = loss.fn if isinstance(loss, DSSMLoss) else loss
    return getattr(fn, "__name__", type(fn).__name__)
