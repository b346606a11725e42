r"""Matrix factorization in torch, trained three ways (notebook 03).

The model scores a user–item pair by a dot product of learned vectors plus biases,

.. math:: s_{ui} = p_u^\top q_i + b_i \;(+\, b_u + g),

with ``P`` (``n_users × d``), ``Q`` (``n_items × d``), item biases ``b`` (``n_items``), and — for the
pointwise objectives only — user biases and a global bias. What it learns depends on the objective:

``"mse_ones"`` (the baselines seminar's setup, kept to show why it fails)
    :math:`L = \frac{1}{B}\sum_{(u,i)} (s_{ui} - 1)^2` over observed pairs only. Every target is 1,
    so the constant ``g = 1`` (or ``b_u + b_i = 1``) already gives zero loss; nothing asks a random
    pair to score lower than a real one. Without regularisation the loss goes to ~0 and the ranking
    is near random; with L2 the factors shrink to 0 and only the biases are left, a non-personal
    ranking that at best matches TopPopular (measured: ``bench/results/model_measurements.md``).
``"bce"`` (pointwise with sampled negatives)
    :math:`L = \frac{1}{B}\sum_{(u,i)} \big[-\log\sigma(s_{ui}) - \sum_{j \in N_{ui}} \log(1-\sigma(s_{uj}))\big]`,
    a logistic regression "observed vs. random item", :math:`N_{ui}` = ``n_negatives`` uniform items ≠ i.
``"bpr"`` (pairwise, Rendle et al. 2009)
    :math:`L = \frac{1}{B\,|N|}\sum_{(u,i)}\sum_{j \in N_{ui}} -\log\sigma(s_{ui} - s_{uj})`: the observed
    item should outrank a random one.

Which biases: in BPR only differences :math:`s_{ui}-s_{uj}` of one user enter the loss, so ``b_u`` and
``g`` cancel and would never receive a gradient — the model has only item biases. For ``mse_ones`` and
``bce`` the user and global biases are kept (the original seminar's model; for BCE they calibrate
:math:`\sigma(s_{ui})` to each user's activity and the overall rate of positives). They shift all of a
user's scores equally, so they never change a user's ranking, only :meth:`MatrixFactorization.score_pairs`.

Training is vectorized: all distinct observed pairs live as two tensors on the device, each epoch
is a seeded permutation cut into batches (:func:`seminar_lib.training.epoch_batches`), and the
negatives of a batch are drawn with one tensor op (:func:`seminar_lib.training.sample_negatives`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import polars as pl
import torch
import torch.nn.functional as F
from torch import nn

from seminar_lib.columns import Columns
from seminar_lib.errors import check_int, check_number
from seminar_lib.models.base import EncodedInteractions, UserBatch
from seminar_lib.models.vector import VectorRecommender
from seminar_lib.repro import resolve_device, torch_generator
from seminar_lib.training import Trainer, adam, epoch_batches, sample_negatives, seeded_torch, train_batches

U, I = Columns.user, Columns.item


# ------------------------------------------------------------------------------------------ losses
def mse_ones_loss(pos: torch.Tensor, neg: torch.Tensor | None = None) -> torch.Tensor:
    r"""Squared error to an all-ones target on observed pairs: :math:`\frac{1}{B}\sum_b (s_b - 1)^2`.

    ``pos``: ``(B,)`` scores of observed pairs; ``neg`` is ignored (this objective sees no negatives,
    which is exactly its problem).

    >>> float(mse_ones_loss(torch.tensor([1.0, 3.0])))
    2.0
    """
    return ((pos - 1.0) ** 2).mean()


def bce_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    r"""Pointwise logistic loss: :math:`\frac{1}{B}\sum_b \big[-\log\sigma(s_b) - \sum_j \log(1 - \sigma(s_{bj}))\big]`.

    ``pos``: ``(B,)`` scores of observed pairs; ``neg``: ``(B, n_neg)`` scores of the same users with
    sampled items. Uses :math:`-\log\sigma(x) = \mathrm{softplus}(-x)` and
    :math:`-\log(1-\sigma(x)) = \mathrm{softplus}(x)` (stable for large ``|x|``).

    >>> round(float(bce_loss(torch.zeros(2), torch.zeros(2, 3))), 4)  # 4·log 2
    2.7726
    """
    return (F.softplus(-pos) + F.softplus(neg).sum(dim=-1)).mean()


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    r"""Bayesian personalized ranking: :math:`\frac{1}{B\,n_{neg}}\sum_b\sum_j -\log\sigma(s_b - s_{bj})`.

    ``pos``: ``(B,)``; ``neg``: ``(B, n_neg)``; each positive is compared with each of its negatives.

    >>> round(float(bpr_loss(torch.zeros(2), torch.zeros(2, 3))), 4)  # log 2
    0.6931
    """
    return F.softplus(neg - pos[:, None]).mean()


@dataclass(frozen=True)
class Objective:
    """A training objective: its ``loss(pos (B,), neg (B, n_neg) | None) → scalar``, whether it needs
    sampled negatives, whether the model gets user and global biases, and the ``weight_decay`` used
    when none is given (chosen on the ml-100k time split's validation part)."""

    loss: Callable[..., torch.Tensor]
    needs_negatives: bool
    user_and_global_bias: bool
    default_weight_decay: float


OBJECTIVES: dict[str, Objective] = {
    "mse_ones": Objective(mse_ones_loss, needs_negatives=False, user_and_global_bias=True, default_weight_decay=0.0),
    "bce": Objective(bce_loss, needs_negatives=True, user_and_global_bias=True, default_weight_decay=1e-4),
    "bpr": Objective(bpr_loss, needs_negatives=True, user_and_global_bias=False, default_weight_decay=1e-4),
}


# ------------------------------------------------------------------------------------------- network
class MFNet(nn.Module):
    r"""The parameters and the score :math:`s_{ui} = p_u^\top q_i + b_i\,(+\,b_u + g)`.

    ``user_factors``: ``n_users × d``; ``item_factors``: ``n_items × d``; ``item_bias``: ``n_items``;
    ``user_bias`` (``n_users``) and ``global_bias`` (scalar) only with ``user_and_global_bias``.
    Factors start as :math:`\mathcal N(0, \text{init\_std}^2)` from ``generator`` (CPU), biases at 0.
    With ``sparse`` the factor rows are gathered by ``F.embedding(..., sparse=True)``: their gradient is a
    sparse tensor holding only the rows a batch touched (for ``torch.optim.SparseAdam``).
    """

    def __init__(self, n_users: int, n_items: int, factors: int, *, user_and_global_bias: bool,
                 init_std: float, generator: torch.Generator, sparse: bool = False) -> None:
        super().__init__()
        self.sparse = sparse
        self.user_factors = nn.Parameter(init_std * torch.randn(n_users, factors, generator=generator))
        self.item_factors = nn.Parameter(init_std * torch.randn(n_items, factors, generator=generator))
        self.item_bias = nn.Parameter(torch.zeros(n_items))
        self.user_bias = nn.Parameter(torch.zeros(n_users)) if user_and_global_bias else None
        self.global_bias = nn.Parameter(torch.zeros(())) if user_and_global_bias else None

    def forward(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores of pairs: ``users`` and ``items`` are broadcastable index tensors — ``(B,)`` with
        ``(B,)`` gives ``(B,)``; ``(B, 1)`` with ``(B, n_neg)`` gives ``(B, n_neg)``."""
        users, items = torch.broadcast_tensors(users, items)
        scores = (self.rows(self.user_factors, users) * self.rows(self.item_factors, items)).sum(dim=-1) \
            + self.item_bias[items]
        if self.user_bias is not None:
            scores = scores + self.user_bias[users] + self.global_bias
        return scores

    def rows(self, table: nn.Parameter, index: torch.Tensor) -> torch.Tensor:
        """``table[index]`` (``index.shape + (d,)``); a sparse-gradient gather with ``sparse``."""
        return F.embedding(index, table, sparse=True) if self.sparse else table[index]


class _Optimizers:
    """Several optimizers stepped as one (``zero_grad`` and ``step`` call each)."""

    def __init__(self, *optimizers: torch.optim.Optimizer) -> None:
        self.optimizers = optimizers

    def zero_grad(self, set_to_none: bool = True) -> None:
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        for optimizer in self.optimizers:
            optimizer.step()


# --------------------------------------------------------------------------------------------- model
class MatrixFactorization(VectorRecommender):
    r"""Matrix factorization trained with Adam on mini-batches of observed (user, item) pairs.

    Args:
        objective: ``"bpr"``, ``"bce"`` or ``"mse_ones"`` (see the module docstring for the formulas).
        factors: embedding size ``d``.
        epochs: passes over the distinct observed pairs.
        batch_size: positive pairs per optimizer step.
        lr: Adam learning rate.
        weight_decay: L2 penalty :math:`\lambda` (Adam's ``weight_decay``: :math:`\lambda\theta` is added to
            the gradient of every parameter — factors and biases — at every step). None: the
            objective's default, ``1e-4`` for ``bce`` and ``bpr`` and ``0`` for ``mse_ones`` (the objective
            as it is; L2 only turns it into a bias-only ranking, see below). On the ml-100k validation
            part, BCE/BPR overfit at λ = 0 (nDCG@10 0.07–0.08), are flat at 0.09–0.10 from 3e-5 to
            1e-3, and near 1e-3 drift to a popularity ranking (test 0.10, TopPopular's value); 1e-4 is
            in the flat range and keeps the factors personal.
        n_negatives: sampled negatives per positive (``bce``, ``bpr``; unused by ``mse_ones``).
        seed: seeds the initial factors, the epoch shuffles and the negatives (one CPU
            ``torch.Generator``, so CPU and GPU runs draw the same numbers; two CPU fits with one seed
            give identical weights).
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"`` …
        log_every: print ``epoch   N  loss …`` (and the validation nDCG@10) every this many epochs and
            after the last one, and with ``valid`` a final ``best epoch …`` line; None prints nothing.
        init_std: standard deviation of the initial factors.
        sparse: sparse gradients for the factor tables, updated by ``torch.optim.SparseAdam`` (the biases
            keep Adam): a step costs ``O(B·d)`` instead of ``O((n_users + n_items)·d)`` — dense Adam moves
            every row of a 960k-user table at every step, while a batch touches a few thousand. The L2
            penalty on factors becomes lazy: ``λ/2·‖θ_r‖²`` for each distinct row ``r`` the batch touches
            (Adam's ``weight_decay`` adds ``λθ`` to every row's gradient at every step), and rows untouched
            by a step keep their moments; so the numbers differ from the dense run. For KION-sized data
            (1M users); the notebooks' ml-100k runs keep the dense default.

    Training runs through :class:`seminar_lib.training.Trainer`, the loop DSSM and SASRec share
    (progress bar, log lines, validation, the best checkpoint); MF supplies one epoch of batches and
    the validation nDCG@10, and never stops early.

    After ``fit``: ``history_`` (polars: ``epoch, loss`` and ``val_ndcg@10`` when ``valid`` was
    given — null on epochs without validation), ``epoch_seconds_`` (wall-clock per epoch, excluding
    validation), ``best_epoch_`` (with ``valid``: the best validated epoch, whose weights the model
    keeps; else the last), ``train_result_`` (the :class:`~seminar_lib.training.TrainResult`),
    ``net_`` (the :class:`MFNet`).

    Weights of the interactions are ignored: a pair observed at least once is a positive.
    """

    fitted_attributes = ("items_", "net_")

    def __init__(self, objective: str = "bpr", factors: int = 64, epochs: int = 20, batch_size: int = 4096,
                 lr: float = 0.01, weight_decay: float | None = None, n_negatives: int = 1, *, seed: int = 0,
                 device: str | torch.device = "auto", log_every: int | None = 5, init_std: float = 0.1,
                 sparse: bool = False) -> None:
        if objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {objective!r}; choose one of {sorted(OBJECTIVES)}")
        for name, value in (("factors", factors), ("batch_size", batch_size), ("n_negatives", n_negatives)):
            check_int(name, value)
        check_int("epochs", epochs, minimum=0)
        check_int("log_every", log_every, optional=True)
        if weight_decay is None:
            weight_decay = OBJECTIVES[objective].default_weight_decay
        check_number("lr", lr, strict_low=True)
        check_number("weight_decay", weight_decay)
        check_number("init_std", init_std, strict_low=True)
        self.objective = objective
        self.factors = int(factors)
        self.epochs = int(epochs)
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.n_negatives = int(n_negatives)
        self.seed = int(seed)
        self.device = resolve_device(device)
        self.log_every = log_every
        self.init_std = float(init_std)
        self.sparse = bool(sparse)

    @property
    def name(self) -> str:
        return f"MF({self.objective})"

    # ------------------------------------------------------------------------------------ training
    def _fit(self, data: EncodedInteractions, valid: pl.DataFrame | None = None) -> None:
        """``fit(interactions, valid=None)``: train on the interactions; with ``valid`` (``user_id,
        item_id``), also measure nDCG@10 on it at every logging epoch (and the last), recommending with
        filter-viewed for the validation users seen in ``interactions`` — their other validation rows
        count as relevant even when the item is unseen in train — and keep the weights of the best
        validated epoch (all epochs run: no early stopping). Validation draws no random numbers, so
        the training run is the same with or without it."""
        objective = OBJECTIVES[self.objective]
        if objective.needs_negatives and data.n_items < 2:
            raise ValueError(f"{self.name} needs at least 2 items to sample negatives, got {data.n_items}")
        valid = self._warm_valid(valid)
        with seeded_torch(self.seed, self.device):
            self._train(data, objective, valid)

    def _train(self, data: EncodedInteractions, objective: Objective, valid: pl.DataFrame | None) -> None:
        generator = torch_generator(self.seed)  # CPU: the same numbers on every device
        self.net_ = MFNet(data.n_users, data.n_items, self.factors, user_and_global_bias=objective.user_and_global_bias,
                          init_std=self.init_std, generator=generator, sparse=self.sparse).to(self.device)
        optimizer = self._optimizer()
        pairs = data.matrix.tocoo()  # distinct (user, item) pairs, sorted: a deterministic order
        users = torch.as_tensor(pairs.row, dtype=torch.long, device=self.device)
        items = torch.as_tensor(pairs.col, dtype=torch.long, device=self.device)
        n_pos = users.shape[0]

        def batch_loss(idx: torch.Tensor) -> torch.Tensor:
            u, i = users[idx], items[idx]
            pos = self.net_(u, i)                                                      # (B,)
            neg = None
            if objective.needs_negatives:
                j = sample_negatives(i, data.n_items, self.n_negatives, generator)      # (B, n_neg)
                neg = self.net_(u[:, None], j)                                         # (B, n_neg)
            loss = objective.loss(pos, neg)
            if self.sparse and self.weight_decay:
                touched = [(self.net_.user_factors, u), (self.net_.item_factors, i if neg is None else torch.cat([i, j.ravel()]))]
                loss = loss + self.weight_decay / 2 * sum(self.net_.rows(table, rows.unique()).pow(2).sum()
                                                          for table, rows in touched)
            return loss

        def run_epoch(epoch: int) -> float:
            return train_batches(epoch_batches(n_pos, self.batch_size, generator, device=self.device),
                                 batch_loss, optimizer)

        validate = (lambda: {"val_ndcg@10": self._validation_ndcg(valid)}) if valid is not None else None
        # validation at the logging epochs (and the last one); no early stopping
        trainer = Trainer(self.epochs, validate_every=self.log_every or max(self.epochs, 1), patience=None,
                          monitor="val_ndcg@10", log_every=self.log_every, name=self.name)
        self._keep_training(trainer.fit(self.net_, run_epoch, validate))

    def _optimizer(self) -> torch.optim.Optimizer | _Optimizers:
        """Adam over every parameter; with ``sparse``, SparseAdam over the factor tables and Adam (with
        ``weight_decay``) over the biases."""
        if not self.sparse:
            return adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        tables = [self.net_.user_factors, self.net_.item_factors]
        biases = [p for p in self.net_.parameters() if all(p is not t for t in tables)]
        return _Optimizers(torch.optim.SparseAdam(tables, lr=self.lr),
                           adam(biases, lr=self.lr, weight_decay=self.weight_decay))

    # ------------------------------------------------------------------------------------- scoring
    def _user_vectors(self, batch: UserBatch) -> torch.Tensor:
        """``P[u]`` (``B × factors``) of the batch's users."""
        return self.net_.user_factors[torch.tensor(batch.user, dtype=torch.long, device=self.device)]

    def _item_vectors(self) -> torch.Tensor:
        """``Q``: the ``n_items × factors`` item factors."""
        return self.net_.item_factors

    def _add_biases(self, scores: torch.Tensor, batch: UserBatch) -> torch.Tensor:
        """``P[u] Qᵀ + b`` (the item biases), and ``+ (b_u + g)`` per row for ``mse_ones`` and ``bce``."""
        scores = scores + self.net_.item_bias
        if self.net_.user_bias is not None:
            users = torch.tensor(batch.user, dtype=torch.long, device=self.device)
            scores = scores + (self.net_.user_bias[users] + self.net_.global_bias)[:, None]
        return scores

    def _pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        r""":math:`s_{ui}` with the biases (for ``bce``, :math:`\sigma(s_{ui})` is the model's probability
        that the pair is observed rather than random)."""
        return self.net_(users, items)
