"""What SASRec and BERT4Rec share: fitting through :class:`~seminar_lib.training.Trainer`, scoring from
histories, item vectors.

A subclass says how a training batch is built (``_training_batch``), whether attention is causal,
how many positions it needs and how a history is turned into inference inputs; everything else —
sequences, item features, negatives, the loss registry, validation, early stopping, recommending
with filter-viewed, i2i — is here.
"""

from __future__ import annotations

import contextlib
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from typing import ClassVar

import polars as pl
import torch

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError, check_int, check_number, require_columns
from seminar_lib.features import FeatureEncoder, category, multi, token_bags
from seminar_lib.metrics.keys import metric_key
from seminar_lib.models.base import EncodedInteractions, UserBatch
from seminar_lib.models.sequential.backbone import ItemEncoder, TransformerBackbone
from seminar_lib.models.sequential.data import SequenceBatch, Sequences, length_bucketed_batches, target_counts
from seminar_lib.models.sequential.losses import LossInputs, get_loss, log_frequencies
from seminar_lib.models.vector import VectorRecommender
from seminar_lib.next_item import NextItemSamples, evaluate_next_item, next_item_samples
from seminar_lib.repro import resolve_device, torch_generator
from seminar_lib.training import Trainer, adam, sample_negatives, seeded_torch

U, I, T = Columns.user, Columns.item, Columns.timestamp


class TransformerRecommender(VectorRecommender):
    """Base of :class:`~seminar_lib.models.sequential.SASRec` and
    :class:`~seminar_lib.models.sequential.BERT4Rec`; SASRec's docstring lists the arguments (its
    ``__init__`` is this one, every parameter explicit)."""

    scores_from_history = True
    fitted_attributes = ("items_", "net_")
    causal: ClassVar[bool]
    extra_positions: ClassVar[int]
    shifted_targets: ClassVar[bool]

    def __init__(self, loss: str = "softmax", *, dim: int = 64, heads: int = 2, layers: int = 2, max_len: int = 200,
                 dropout: float = 0.2, epochs: int = 20, batch_size: int = 128, lr: float = 2e-3,
                 weight_decay: float = 0.0, n_negatives: int | None = None, gbce_t: float = 0.75,
                 item_features: Sequence[str] = (), use_item_ids: bool = True, validate_every: int = 1,
                 patience: int | None = None, valid_per_user: int | None = 1, val_k: int = 10,
                 bucket_pool: int = 4, seed: int = 0, device: str | torch.device = "auto",
                 log_every: int | None = 5) -> None:
        spec = get_loss(loss)
        for name, value in (("dim", dim), ("heads", heads), ("layers", layers), ("max_len", max_len),
                            ("batch_size", batch_size), ("validate_every", validate_every), ("val_k", val_k),
                            ("bucket_pool", bucket_pool)):
            check_int(name, value)
        check_int("epochs", epochs, minimum=0)
        for name, value in (("patience", patience), ("valid_per_user", valid_per_user), ("log_every", log_every)):
            check_int(name, value, optional=True)
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        check_number("dropout", dropout, high=1.0, strict_high=True)
        check_number("lr", lr, strict_low=True)
        check_number("weight_decay", weight_decay)
        check_number("gbce_t", gbce_t, high=1.0)
        n_negatives = spec.default_negatives if n_negatives is None else n_negatives
        if (spec.needs_negatives or loss.startswith("in_batch")) and n_negatives < 1:
            raise ValueError(f"loss {loss!r} needs n_negatives ≥ 1, got {n_negatives}")
        self.loss, self.dim, self.heads, self.layers, self.max_len = loss, int(dim), int(heads), int(layers), int(max_len)
        self.dropout, self.epochs, self.batch_size, self.lr = float(dropout), int(epochs), int(batch_size), float(lr)
        self.weight_decay, self.n_negatives, self.gbce_t = float(weight_decay), int(n_negatives), float(gbce_t)
        self.item_features, self.use_item_ids = tuple(item_features), bool(use_item_ids)
        self.validate_every, self.patience, self.valid_per_user, self.val_k = validate_every, patience, valid_per_user, val_k
        self.bucket_pool, self.seed, self.device, self.log_every = int(bucket_pool), int(seed), resolve_device(device), log_every

    # ------------------------------------------------------------------------------------- fitting
    def fit(self, interactions: pl.DataFrame, valid: pl.DataFrame | None = None, *,
            item_features: pl.DataFrame | None = None) -> TransformerRecommender:
        """Train on ``interactions`` (``user_id, item_id, timestamp``).

        ``valid``: the validation period's events (same columns). Then every ``validate_every``
        epochs the model is scored on next-item samples of that period (``valid_per_user`` random
        events per user, each given all the user's earlier events in ``interactions`` and ``valid``;
        :mod:`~seminar_lib.next_item`), the best epoch's weights are kept and
        training stops after ``patience`` validations without improvement.

        ``item_features``: the item feature *table* — ``item_id`` and the categorical columns named in
        ``item_features=`` at construction (string or list-of-strings columns, e.g. ml-100k's ``genres``).
        The constructor's ``item_features`` is a tuple of column names, this one the table (DSSM's
        ``item_features`` is the table too, its columns chosen by ``preset``); the names stay as they are
        because notebook 06 passes both. The columns are tokenised by
        :class:`~seminar_lib.features.FeatureEncoder` (``multi`` for a list column, ``category``
        otherwise; see :meth:`_encode_item_features`).
        """
        require_columns(interactions.columns, (U, I, T), f"interactions passed to {self.name}.fit")
        if self.item_features and item_features is None:
            raise SchemaError(f"{self.name} was built with item_features={list(self.item_features)}: pass the "
                              "item feature table as fit(..., item_features=items)")
        samples = None
        if valid is not None and not valid.is_empty():
            require_columns(valid.columns, (U, I, T), f"valid passed to {self.name}.fit")
            both = pl.concat([interactions.select(U, I, T), valid.select(U, I, T)], how="vertical_relaxed")
            samples = next_item_samples(both, start=valid[T].min(), per_user=self.valid_per_user, seed=self.seed)
        return super().fit(interactions, samples, item_features)

    def _fit(self, data: EncodedInteractions, valid_samples: NextItemSamples | None = None,
             item_features: pl.DataFrame | None = None) -> None:
        spec = get_loss(self.loss)
        if data.n_items < 2:
            raise ValueError(f"{self.name} needs at least 2 items, got {data.n_items}")
        self.sequences_ = Sequences.from_events(data.user, data.item, data.timestamp, data.n_users)
        train_rows = torch.nonzero(self.sequences_.lengths >= 2).flatten()
        if train_rows.numel() == 0:
            raise ValueError(f"{self.name}: no user has two events; nothing to train on")
        self.n_train_sequences_ = int(train_rows.numel())
        counts = target_counts(self.sequences_, train_rows, self.max_len, data.n_items, shifted=self.shifted_targets)
        self.target_counts_ = counts
        log_q = log_frequencies(counts).to(self.device) if spec.needs_log_q else None
        generator = torch_generator(self.seed)  # shuffles, negatives, masks: one CPU stream
        with seeded_torch(self.seed, self.device):  # dropout
            self.net_ = self._build_network(data.n_items, generator, item_features).to(self.device)
            optimizer = adam(self.net_.parameters(), lr=self.lr, betas=(0.9, 0.98), weight_decay=self.weight_decay)
            lengths = self.sequences_.lengths[train_rows]

            def run_epoch(epoch: int) -> float:
                batches = [self._training_batch(train_rows[idx], data.n_items, generator)
                           for idx in length_bucketed_batches(lengths, self.batch_size, generator,
                                                              pool_batches=self.bucket_pool)]
                counts = [int((batch.targets > 0).sum()) for batch in batches]
                per_batch = sum(counts) / len(counts)
                total = torch.zeros((), dtype=torch.float64, device=self.device)
                for batch, n in zip(batches, counts):
                    loss = self._batch_loss(batch.to(self.device), spec, data.n_items, log_q, generator)
                    optimizer.zero_grad(set_to_none=True)
                    # every target weighs the same, whichever batch it is in: length-bucketed batches
                    # of short sequences hold few targets, and a plain per-batch mean would favour them
                    (loss * (n / per_batch)).backward()
                    optimizer.step()
                    total += loss.detach().double() * n
                return float(total) / max(sum(counts), 1)

            self.valid_samples_ = valid_samples
            validate = self._validate if valid_samples is not None else None
            trainer = Trainer(self.epochs, validate_every=self.validate_every, patience=self.patience,
                              monitor=f"val_{metric_key('ndcg', self.val_k)}", log_every=self.log_every, name=self.name)
            self._keep_training(trainer.fit(self.net_, run_epoch, validate))

    def _build_network(self, n_items: int, generator: torch.Generator,
                       item_features: pl.DataFrame | None) -> TransformerBackbone:
        offsets = values = None
        n_features = 0
        if self.item_features:
            offsets, values, self.feature_names_ = self._encode_item_features(item_features)
            n_features = len(self.feature_names_)
        encoder = ItemEncoder(n_items, self.dim, use_ids=self.use_item_ids, feature_offsets=offsets,
                              feature_values=values, n_features=n_features, generator=generator)
        return TransformerBackbone(encoder, self.max_len + self.extra_positions, heads=self.heads, layers=self.layers,
                                   dropout=self.dropout, causal=self.causal, generator=generator)

    def _encode_item_features(self, table: pl.DataFrame) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
        """CSR ``(offsets, values)`` of ``column=value`` tokens per item (model order), and the names.

        The course's one tokeniser: a :class:`~seminar_lib.features.FeatureEncoder` of the named columns
        (``multi`` for a list column, ``category`` otherwise) fitted on the catalogue's rows of ``table``,
        then :func:`~seminar_lib.features.token_bags` — its known tokens, numbered in name order (an item
        without a value has no token; no ``<unknown>`` token, so the embedding table has one row a value).
        ``tests/models/sequential/test_seq_item_features.py`` checks the ids against the earlier tokeniser.
        """
        require_columns(table.columns, (I, *self.item_features), "item_features table")
        table = table.filter(self.items_.contains(table[I].cast(self.items_.ids.dtype, strict=False)))
        features = [multi(c) if isinstance(table.schema[c], pl.List) else category(c) for c in self.item_features]
        return token_bags(FeatureEncoder(features, key=I).fit(table), self.items_.ids)

    @abstractmethod
    def _training_batch(self, rows: torch.Tensor, n_items: int, generator: torch.Generator) -> SequenceBatch:
        """The training batch of sequences ``rows`` of :attr:`sequences_`."""

    def _batch_loss(self, batch: SequenceBatch, spec, n_items: int, log_q: torch.Tensor | None,
                    generator: torch.Generator) -> torch.Tensor:
        """Forward the batch, pick the target positions, apply the loss (the mean over the targets)."""
        table = self.net_.items()
        hidden = self.net_(batch.inputs, batch.lengths, table)
        where = batch.targets > 0
        positives = batch.targets[where] - 1
        negatives = sequence = None
        if spec.needs_negatives:
            if spec.negatives_per_sequence:
                negatives = torch.randint(0, n_items, (batch.targets.shape[0], self.n_negatives), generator=generator,
                                          device=generator.device).to(self.device)
                sequence = where.nonzero()[:, 0]
            else:
                negatives = sample_negatives(positives, n_items, self.n_negatives, generator)
        inputs = LossInputs(hidden[where], positives, table[1:n_items + 1], negatives=negatives, sequence=sequence,
                            log_q=log_q, n_negatives=self.n_negatives, gbce_t=self.gbce_t, generator=generator)
        return spec.compute(inputs)

    def _validate(self) -> dict[str, float]:
        report = evaluate_next_item(self, self.valid_samples_, k=self.val_k, metrics=("ndcg", "hit_rate"), with_coverage=False)
        return {f"val_{metric_key(row['metric'], row['k'])}": row["value"] for row in report.metrics.iter_rows(named=True)}

    # ------------------------------------------------------------------------------------- scoring
    @abstractmethod
    def _inference_inputs(self, sequences: Sequences, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(tokens, lengths, has_history)``: inputs whose output at ``lengths − 1`` scores the next item."""

    def _sequence_vectors(self, batch: UserBatch, chunk: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, dim)`` outputs at each user's last position, read from their last ``max_len`` events
        (the given interactions' events in time order, or the fit-time sequence of a known user when
        no interactions were passed), and ``(B,)`` whether the user has a history to score from."""
        if batch.timed_events is not None:
            sequences, rows = Sequences.from_batch_events(batch.events, len(batch.user)), torch.arange(len(batch.user))
        else:
            if (batch.user < 0).any():
                raise ValueError("users unseen at fit need their history passed as interactions=")
            sequences, rows = self.sequences_, torch.tensor(batch.user, dtype=torch.long)
        vectors, flags = [], []
        with self._eval_mode():
            table = self.net_.items()
            for part in rows.split(chunk):
                tokens, lengths, has_history = self._inference_inputs(sequences, part)
                tokens, lengths = tokens.to(self.device), lengths.to(self.device).clamp(min=1)
                if tokens.shape[1] == 0:
                    tokens = tokens.new_zeros(tokens.shape[0], 1)
                hidden = self.net_(tokens, lengths, table)
                vectors.append(hidden[torch.arange(tokens.shape[0], device=self.device), lengths - 1])
                flags.append(has_history.to(self.device))
        if not vectors:
            return torch.empty(0, self.dim, device=self.device), torch.empty(0, dtype=torch.bool, device=self.device)
        return torch.cat(vectors), torch.cat(flags)

    def _user_vectors(self, batch: UserBatch) -> torch.Tensor:
        return self._sequence_vectors(batch)[0]

    def _item_vectors(self) -> torch.Tensor:
        """``n_items × dim`` output item vectors (id + features), in ``self.items_`` order."""
        with self._eval_mode():
            return self.net_.items.item_vectors()

    def _score(self, batch: UserBatch) -> torch.Tensor:
        """:math:`F_u M^\top`, and ``-inf`` for users without a history to read (they get no list)."""
        vectors, has_history = self._sequence_vectors(batch)
        with self._eval_mode():
            scores = vectors @ self._item_vectors().T
        if not has_history.all():  # in place, and only when needed: a copy of B × n_items costs as much as topk
            scores[~has_history] = -torch.inf
        return scores

    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        was_training = self.net_.training
        self.net_.eval()
        try:
            with torch.no_grad():
                yield
        finally:
            self.net_.train(was_training)
