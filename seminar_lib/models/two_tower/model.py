r"""DSSM: a two-tower model with user and item features (notebook 04).

A *user tower* maps what we know about a user — categorical features and the items of their
history — to a vector :math:`u \in \mathbb R^d`; an *item tower* maps an item's id and features to
:math:`v \in \mathbb R^d`; the score is their similarity,

.. math:: s(u, i) = \frac{u^\top v_i}{\lVert u\rVert\,\lVert v_i\rVert} \;\; (\texttt{similarity="cosine"})
   \qquad\text{or}\qquad s(u, i) = u^\top v_i \;\; (\texttt{"dot"}).

Recommending is one matrix product of the user vectors with all item vectors (then filter-viewed
and a deterministic top-k in the base class), the same similarity as in training.

**No target leakage.** A training sample is an observed pair :math:`(u, i)`, and :math:`i \in H_u`.
If :math:`h_u` contained :math:`i`, the tower could learn "score high the items in my input" — a
shortcut that does not exist at test time, where the targets are *not* in the history. The original seminar's
user input contained its positive. Here the positive is taken out of the bag:

.. math:: h_{u,-i} = \frac{\sum_{j \in H_u} W_j - W_i}{|H_u| - 1}

(exactly the mean over :math:`H_u \setminus \{i\}`, zero when :math:`H_u = \{i\}`), computed per
batch from the users' full sums, so no per-sample bag is ever materialised.

**Cost at scale.** A training step pools the full histories of its distinct users: ``Σ |H_u|`` rows of
``W`` gathered, and scattered back in the backward pass. With short histories (KION: ~5 items a user)
that is cheap; with long ones (ML-1M: ~150 a user) it dominates an epoch, and the step is bound by
memory traffic — the instructor's run on such data wants a GPU, or ``history="none"`` / a smaller
``embedding_dim`` on a CPU.

Interaction weights are ignored: a pair observed at least once is a positive, and an item counts
once in the history bag.

Training is vectorized: features, histories and pairs live as tensors on the device; a batch is
a seeded permutation slice (:func:`~seminar_lib.training.epoch_batches`); histories are gathered
with tensor ops; each distinct item of a batch goes through the item tower once.

The parts: :mod:`~seminar_lib.models.two_tower.losses` (the loss interface and registry),
:mod:`~seminar_lib.models.two_tower.sampling` (negatives that are not the user's items),
:mod:`~seminar_lib.models.two_tower.towers` (inputs and towers); here, the recommender.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl
import torch
import torch.nn.functional as F

from seminar_lib.columns import Columns
from seminar_lib.errors import check_choice, check_int, check_number
from seminar_lib.features import FeatureEncoder, FeaturePreset, get_preset, unknown_codes
from seminar_lib.models.base import EncodedInteractions, UserBatch
from seminar_lib.models.two_tower import sampling
from seminar_lib.models.two_tower.losses import DSSMLoss, LossSpec, TowerBatch, loss_name, resolve_loss
from seminar_lib.models.two_tower.sampling import pair_keys, ragged_rows
from seminar_lib.models.two_tower.towers import DSSMNet, FeatureFactory, TowerFactory
from seminar_lib.models.vector import VectorRecommender
from seminar_lib.repro import resolve_device, torch_generator
from seminar_lib.training import Trainer, adam, epoch_batches, sample_negatives, seeded_torch, train_batches

U, I = Columns.user, Columns.item
Similarity = Literal["cosine", "dot"]


class DSSM(VectorRecommender):
    r"""Two-tower DSSM with user/item features and the user's history (see the module docstring).

    Args:
        loss: ``"softmax"`` (in-batch sampled softmax with logQ), ``"bpr"``, ``"triplet"``, or your own
            pairwise loss: a callable ``fn(pos (B,), neg (B, n_negatives)) → scalar tensor`` on the
            similarities divided by the temperature, or a :class:`DSSMLoss` (see :func:`resolve_loss`).
        similarity: ``"cosine"`` or ``"dot"`` — used in training *and* for ranking.
        temperature: :math:`\tau` dividing the similarities given to ``bpr`` and ``softmax``
            (cosine lies in [−1, 1]: without it the softmax is nearly flat). None: 0.1 for cosine,
            1 for dot.
        margin: the triplet margin ``m`` (similarity units).
        n_negatives: sampled negatives per positive (``bpr``, ``triplet``; all of them enter the loss).
        exclude_seen: redraw sampled negatives that are the user's training items.
        logq: subtract :math:`\log q` in the softmax loss.
        user_features, item_features: feature *tables* keyed by ``user_id`` / ``item_id`` (``ds.users``,
            ``ds.items``; SASRec's ``item_features`` are column names); rows are matched by id, ids
            missing from a table get the unknown token. Used with ``preset``.
        preset: which columns and how — a dataset name (:func:`seminar_lib.features.get_preset`)
            (``"ml-100k"``, ``"ml-1m"``, ``"synthetic"``, ``"kion"``) or a
            :class:`~seminar_lib.features.FeaturePreset`.
        features: ``"embedding"`` (learned token embeddings, summed), ``"onehot"`` (the multi-hot
            vector into the first layer, as in the original seminar), or a factory ``(size, embedding_dim) →
            nn.Module`` (e.g. a class) whose ``forward(index (n, L), weight (n, L))`` returns
            ``(n, embedding_dim)`` — built once for the user and once for the item features
            (:class:`FeatureInput`).
        history: ``"bag"``, ``"embedding"`` (tied to the item-id embeddings; needs ``item_ids``) or ``"none"``.
        item_ids: give the item tower a learned id embedding (else it sees features only, so it can
            embed any item from its features).
        embedding_dim: size of token, id and history embeddings.
        hidden: hidden layer sizes of both towers; ``out_dim``: the size ``d`` of user/item vectors.
        dropout, norm (``"layer"``, ``"batch"``, None), residual_blocks: tower options (:class:`Tower`).
        tower: None (the :class:`Tower` MLP above), or a factory ``(in_dim, out_dim) → nn.Module``
            mapping ``(B, in_dim) → (B, out_dim)``, called for the user tower and then for the item
            tower; ``hidden``, ``dropout``, ``norm`` and ``residual_blocks`` are then unused.
        epochs: maximum passes over the distinct training pairs; ``patience``: with ``valid``, stop
            after this many validations without a better nDCG@10 and restore the best weights.
        batch_size, lr, weight_decay: Adam on mini-batches of pairs.
        seed: seeds the weights, shuffles, negatives and dropout (two CPU fits with one seed give
            identical weights; the global random state is left as it was).
        device: ``"auto"``, ``"cpu"``, ``"cuda"`` …
        log_every: print ``epoch   N  loss …  val_ndcg@10 …`` every this many epochs (and at the end),
            then, with ``valid``, ``best epoch   N  val_ndcg@10 …`` (``(stopped early)`` if it stopped).
        validate_every: epochs between validations (with ``valid``).

    Training runs through :class:`seminar_lib.training.Trainer`, the loop MF and SASRec share
    (progress bar, log lines ending in ``best epoch …``, validation, early stopping, the best
    checkpoint); DSSM supplies one epoch of batches and the validation nDCG@10.

    After ``fit``: ``history_`` (polars ``epoch, loss[, val_ndcg@10]``), ``epoch_seconds_``,
    ``best_epoch_`` (the restored epoch, or the last), ``train_result_``
    (:class:`~seminar_lib.training.TrainResult`), ``net_`` (:class:`DSSMNet`), ``log_q_``
    (``n_items``: :math:`\log q(i)`, the log-share of each item among the training pairs),
    ``user_encoder_`` / ``item_encoder_`` (:class:`~seminar_lib.features.FeatureEncoder` or None).

    Users unseen at fit are scored from their features and the history passed as
    ``recommend(..., interactions=...)`` (``scores_from_history``).
    """

    scores_from_history = True
    fitted_attributes = ("items_", "net_")

    def __init__(self, loss: LossSpec = "softmax", *, similarity: Similarity = "cosine",
                 temperature: float | None = None, margin: float = 0.5, n_negatives: int = 4, exclude_seen: bool = True,
                 logq: bool = True, user_features: pl.DataFrame | None = None,
                 item_features: pl.DataFrame | None = None, preset: str | FeaturePreset | None = None,
                 features: Literal["embedding", "onehot"] | FeatureFactory = "embedding",
                 history: Literal["bag", "embedding", "none"] = "bag", item_ids: bool = True,
                 embedding_dim: int = 64, hidden: Sequence[int] = (128,), out_dim: int = 64, dropout: float = 0.1,
                 norm: Literal["layer", "batch"] | None = "layer", residual_blocks: int = 0,
                 tower: TowerFactory | None = None, epochs: int = 10, patience: int = 5, batch_size: int = 1024,
                 lr: float = 3e-3, weight_decay: float = 0.0, seed: int = 0, device: str | torch.device = "auto",
                 log_every: int | None = 5, validate_every: int = 1) -> None:
        resolve_loss(loss)  # raises for an unknown name or a non-pairwise DSSMLoss
        check_choice("similarity", similarity, ("cosine", "dot"))
        if not callable(features):
            check_choice("features", features, ("embedding", "onehot"))
        if tower is not None and not callable(tower):
            raise ValueError(f"tower must be None or a factory (in_dim, out_dim) -> nn.Module, got {tower!r}")
        check_choice("history", history, ("bag", "embedding", "none"))
        check_choice("norm", norm, ("layer", "batch", None))
        for name, value in (("n_negatives", n_negatives), ("embedding_dim", embedding_dim), ("out_dim", out_dim),
                            ("batch_size", batch_size), ("patience", patience), ("validate_every", validate_every)):
            check_int(name, value)
        for name, value in (("epochs", epochs), ("residual_blocks", residual_blocks)):
            check_int(name, value, minimum=0)
        hidden = tuple(hidden)
        for h in hidden:
            check_int("hidden sizes", h)
        check_int("log_every", log_every, optional=True)
        if temperature is not None:
            check_number("temperature", temperature, strict_low=True)
        check_number("lr", lr, strict_low=True)
        check_number("weight_decay", weight_decay)
        check_number("dropout", dropout, high=1.0, strict_high=True)
        check_number("margin", margin)
        if history == "embedding" and not item_ids:
            raise ValueError("history='embedding' pools the item-id embeddings, so it needs item_ids=True "
                             "(or use history='bag')")
        if (user_features is not None or item_features is not None) and preset is None:
            raise ValueError("feature tables need preset= to say which columns to use: a name in "
                             "seminar_lib.features.preset_names() or a FeaturePreset")
        if preset is not None and user_features is None and item_features is None:
            raise ValueError("preset= was given without feature tables: pass user_features= and/or item_features=")
        self.preset = get_preset(preset) if preset is not None else None
        self.loss, self.similarity, self.margin = loss, similarity, float(margin)
        self.temperature = float(temperature) if temperature is not None else (0.1 if similarity == "cosine" else 1.0)
        self.n_negatives, self.exclude_seen, self.logq = int(n_negatives), bool(exclude_seen), bool(logq)
        self.user_features, self.item_features = user_features, item_features
        self.features, self.history, self.item_ids = features, history, bool(item_ids)
        self.embedding_dim, self.hidden, self.out_dim = int(embedding_dim), hidden, int(out_dim)
        self.dropout, self.norm, self.residual_blocks = float(dropout), norm, int(residual_blocks)
        self.tower = tower
        self.epochs, self.patience, self.batch_size = int(epochs), int(patience), int(batch_size)
        self.lr, self.weight_decay, self.seed = float(lr), float(weight_decay), int(seed)
        self.device = resolve_device(device)
        self.log_every, self.validate_every = log_every, int(validate_every)

    @property
    def name(self) -> str:
        return f"DSSM({loss_name(self.loss)})"

    # ------------------------------------------------------------------------------------- fit
    def _encoders(self) -> None:
        preset = self.preset
        self.user_encoder_ = self.item_encoder_ = None
        if preset is not None and self.user_features is not None and preset.users:
            self.user_encoder_ = FeatureEncoder(preset.users, U).fit(self.user_features, ids=self.users_.ids)
        if preset is not None and self.item_features is not None and preset.items:
            self.item_encoder_ = FeatureEncoder(preset.items, I).fit(self.item_features, ids=self.items_.ids)

    def _fit(self, data: EncodedInteractions, valid: pl.DataFrame | None = None) -> None:
        """``fit(interactions, valid=None)``: train on the interactions; with ``valid`` (``user_id,
        item_id``), measure nDCG@10 on its users seen in ``interactions`` every ``validate_every``
        epochs (filter-viewed on the training history), stop early after ``patience`` validations
        without improvement and keep the best weights."""
        spec = resolve_loss(self.loss)
        if data.n_items < 2:
            raise ValueError(f"{self.name} needs at least 2 items, got {data.n_items}")
        valid = self._warm_valid(valid)
        self._encoders()
        generator = torch_generator(self.seed)  # shuffles, negatives, initial embeddings (CPU: same on every device)
        with seeded_torch(self.seed, self.device):  # dropout and Linear init
            self.net_ = self._build_net(data.n_items, generator).to(self.device)
            self._train(data, spec, valid, generator)

    def _build_net(self, n_items: int, generator: torch.Generator) -> DSSMNet:
        item_feats = self.item_encoder_.encode(self.items_.ids) if self.item_encoder_ is not None else None
        return DSSMNet(
            n_items=n_items, user_feature_size=self.user_encoder_.size if self.user_encoder_ is not None else None,
            user_unknown=unknown_codes(self.user_encoder_) if self.user_encoder_ is not None else (),
            item_features=item_feats, item_unknown=unknown_codes(self.item_encoder_) if self.item_encoder_ else (),
            features=self.features, history=self.history, item_ids=self.item_ids, embedding_dim=self.embedding_dim,
            hidden=self.hidden, out_dim=self.out_dim, dropout=self.dropout, norm=self.norm,
            residual_blocks=self.residual_blocks, generator=generator, tower=self.tower)

    def _train(self, data: EncodedInteractions, spec: DSSMLoss, valid: pl.DataFrame | None,
               generator: torch.Generator) -> None:
        dev = self.device
        pairs = data.matrix.tocoo()  # distinct (user, item) pairs, sorted: a deterministic order
        users = torch.as_tensor(pairs.row, dtype=torch.long, device=dev)
        items = torch.as_tensor(pairs.col, dtype=torch.long, device=dev)
        binary = data.matrix.copy()
        binary.sort_indices()
        self._indptr = torch.as_tensor(binary.indptr, dtype=torch.long, device=dev)
        self._hist_items = torch.as_tensor(binary.indices, dtype=torch.long, device=dev)
        self._seen_keys = pair_keys(users, items, data.n_items).sort().values
        counts = torch.bincount(items, minlength=data.n_items).double()
        self.log_q_ = (counts / counts.sum()).log().float()
        self._train_user_features = (self.user_encoder_.encode(self.users_.ids, device=dev)
                                     if self.user_encoder_ is not None else None)
        optimizer = adam(self.net_.parameters(), lr=self.lr, weight_decay=self.weight_decay, fused=True)
        n_pos = users.shape[0]

        def run_epoch(epoch: int) -> float:
            self._item_cache = None
            return train_batches(epoch_batches(n_pos, self.batch_size, generator, device=dev),
                                 lambda idx: self._batch_loss(users[idx], items[idx], spec, generator), optimizer)

        validate = (lambda: {"val_ndcg@10": self._validation_ndcg(valid)}) if valid is not None else None
        trainer = Trainer(self.epochs, validate_every=self.validate_every, patience=self.patience,
                          monitor="val_ndcg@10", log_every=self.log_every, name=self.name)
        self._keep_training(trainer.fit(self.net_, run_epoch, validate))  # the best weights, eval mode
        self._item_cache = None

    def _batch_loss(self, u: torch.Tensor, i: torch.Tensor, spec: DSSMLoss, generator: torch.Generator) -> torch.Tensor:
        """The loss of one batch of observed pairs ``(u, i)`` (``(B,)`` each): the towers' outputs as a
        :class:`~seminar_lib.models.two_tower.losses.TowerBatch`, given to ``spec.compute``."""
        user_vec = self._normalize(self.training_user_vectors(u, i))                 # (B, d)
        if spec.needs_negatives:
            neg = (sampling.sample_unseen_negatives(u, i, self._seen_keys, self._n_items, self.n_negatives, generator)
                   if self.exclude_seen else sample_negatives(i, self._n_items, self.n_negatives, generator))
            wanted = torch.cat([i, neg.reshape(-1)])
        else:
            wanted = i
        unique, inverse, counts = torch.unique(wanted, return_inverse=True, return_counts=True)  # encode once
        batch = TowerBatch(user_vec, self._normalize(self.net_.item_vectors(unique)), inverse, counts,
                           scale=1.0 / self.temperature if spec.scaled else 1.0, n_negatives=self.n_negatives,
                           log_q=self.log_q_[unique] if self.logq else None, margin=self.margin)
        return spec.compute(batch)

    @property
    def _n_items(self) -> int:
        return len(self.items_)

    def _normalize(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(x, dim=-1) if self.similarity == "cosine" else x

    def training_history(self, users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        r"""Pooled histories ``(B, embedding_dim)`` of training pairs ``(users[b], positives[b])`` with
        the positive taken out (no target leakage):

        .. math:: h_{u,-i} = \frac{\sum_{j \in H_u} W_j - W_i}{|H_u| - 1}
                  \quad(\text{the mean of } W \text{ over } H_u \setminus \{i\};\ 0 \text{ if } H_u = \{i\}).

        Every pair's item is in its user's training history, so the subtraction removes exactly
        the positive. Each distinct user of the batch is summed once (``F.embedding_bag`` over the
        rows gathered by :func:`ragged_rows`): no per-sample bag is built.
        """
        unique, inverse = torch.unique(users, return_inverse=True)
        flat, offsets, counts = ragged_rows(self._indptr, self._hist_items, unique)
        sums = self.net_.history_sums(flat, offsets)[inverse]                          # (B, e)
        own = self.net_.history_weights()[positives]                                   # (B, e)
        rest = (counts[inverse] - 1).clamp(min=1).to(sums.dtype)[:, None]
        return (sums - own) / rest

    def training_user_vectors(self, users: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        """User-tower outputs ``(B, out_dim)`` for training pairs: the users' features and
        :meth:`training_history` (positive excluded). Not normalized (cosine normalizes later)."""
        history = self.training_history(users, positives) if self.history != "none" else None
        feats = self._train_user_features[users] if self._train_user_features is not None else None
        return self.net_.user_vectors(feats, history)

    def _validation_ndcg(self, valid: pl.DataFrame) -> float:
        # the item vectors of the current weights are cached for this call only
        self._item_cache = None
        try:
            return super()._validation_ndcg(valid)
        finally:
            self._item_cache = None

    # ---------------------------------------------------------------------------------- scoring
    def _item_vectors(self) -> torch.Tensor:
        """All item vectors ``(n_items, d)`` (normalized for cosine), computed once after fit."""
        if getattr(self, "_item_cache", None) is None:
            with torch.no_grad():
                all_items = torch.arange(self._n_items, device=self.device)
                self._item_cache = self._normalize(self.net_.item_vectors(all_items))
        return self._item_cache

    def _user_vectors(self, batch: UserBatch) -> torch.Tensor:
        """User vectors ``(B, d)`` (normalized for cosine) from features looked up by id and the pooled
        full histories of the batch."""
        history = batch.history.tocsr()
        history.sort_indices()
        pooled = self._pooled_history(history.indptr, history.indices)
        feats = self.user_encoder_.encode(batch.ids, device=self.device) if self.user_encoder_ is not None else None
        with torch.no_grad():
            return self._normalize(self.net_.user_vectors(feats, pooled))

    def _pooled_history(self, indptr: np.ndarray, indices: np.ndarray) -> torch.Tensor | None:
        """Mean of ``W`` over each row's items (a CSR row structure), ``(B, e)``; zero for empty rows."""
        if self.history == "none":
            return None
        indptr_t = torch.as_tensor(indptr, dtype=torch.long, device=self.device)
        flat = torch.as_tensor(indices, dtype=torch.long, device=self.device)
        counts = (indptr_t[1:] - indptr_t[:-1]).clamp(min=1).float()[:, None]
        with torch.no_grad():
            return self.net_.history_sums(flat, indptr_t[:-1]) / counts
