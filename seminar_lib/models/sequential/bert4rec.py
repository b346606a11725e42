r"""BERT4Rec (Sun et al., 2019): a bidirectional transformer trained to fill in masked items.

Notebook 06 teaches this model and compares it with SASRec.

Training hides random items of the sequence (``mask_prob``; the 80/10/10 rule, see
:func:`~seminar_lib.models.sequential.data.masked_item_batch`) and predicts them from both sides;
recommending appends ``[MASK]`` after the user's last ``max_len`` events and reads the next item
off its output. Attention is bidirectional, so no causal mask — only a padding mask.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from seminar_lib.errors import check_number
from seminar_lib.models.sequential.base import TransformerRecommender
from seminar_lib.models.sequential.data import SequenceBatch, Sequences, inference_batch, masked_item_batch


class BERT4Rec(TransformerRecommender):
    """BERT4Rec. Arguments as :class:`~seminar_lib.models.sequential.SASRec` (default loss ``"softmax"``, as
    in the paper; ``item_features``: column *names*, the table goes to ``fit``), plus ``mask_prob`` — the
    share of positions masked in training. Windows hold ``max_len + 1`` events in training, so inference
    (``max_len`` events and ``[MASK]``) uses the same positions."""

    causal = False
    extra_positions = 1
    shifted_targets = False

    def __init__(self, loss: str = "softmax", *, mask_prob: float = 0.15, dim: int = 64, heads: int = 2,
                 layers: int = 2, max_len: int = 200, dropout: float = 0.2, epochs: int = 20, batch_size: int = 128,
                 lr: float = 2e-3, weight_decay: float = 0.0, n_negatives: int | None = None, gbce_t: float = 0.75,
                 item_features: Sequence[str] = (), use_item_ids: bool = True, validate_every: int = 1,
                 patience: int | None = None, valid_per_user: int | None = 1, val_k: int = 10, bucket_pool: int = 4,
                 seed: int = 0, device: str | torch.device = "auto", log_every: int | None = 5) -> None:
        check_number("mask_prob", mask_prob, strict_low=True, high=1.0, strict_high=True)
        super().__init__(loss, dim=dim, heads=heads, layers=layers, max_len=max_len, dropout=dropout, epochs=epochs,
                         batch_size=batch_size, lr=lr, weight_decay=weight_decay, n_negatives=n_negatives,
                         gbce_t=gbce_t, item_features=item_features, use_item_ids=use_item_ids,
                         validate_every=validate_every, patience=patience, valid_per_user=valid_per_user,
                         val_k=val_k, bucket_pool=bucket_pool, seed=seed, device=device, log_every=log_every)
        self.mask_prob = float(mask_prob)

    @property
    def name(self) -> str:
        return "BERT4Rec" if self.loss == "softmax" else f"BERT4Rec({self.loss})"

    def _training_batch(self, rows: torch.Tensor, n_items: int, generator: torch.Generator) -> SequenceBatch:
        return masked_item_batch(self.sequences_, rows, self.max_len, n_items, mask_prob=self.mask_prob,
                                 generator=generator)

    def _inference_inputs(self, sequences: Sequences, rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        n_items = len(self.items_)
        tokens, lengths = inference_batch(sequences, rows, self.max_len, mask_token=n_items + 1)
        return tokens, lengths, lengths > 1
