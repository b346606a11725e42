r"""Sequences of items and the training batches of SASRec and BERT4Rec (the data preparator).

Notebook 05 (§ data) and 06 (§ masking) teach this module.

**Sequences.** Each user's events, sorted by ``(timestamp, item)``, become one sequence of *tokens*:
an item with dense index ``i`` (``0..n_items−1``, :class:`~seminar_lib.models.base.Recommender`'s
encoding) is the token ``i + 1``; token ``0`` is padding and ``n_items + 1`` the ``[MASK]`` token of
BERT4Rec. All sequences live in two flat tensors, CSR-style (:class:`Sequences`): ``tokens`` (every
event, user after user) and ``offsets`` (where each user starts), so cutting a batch is index
arithmetic on tensors — no per-sample Python, no ``DataLoader``, no ``collate_fn``.

**Batches are right-padded** ``B × L`` tensors, ``L`` the longest sequence *in the batch* (at most
``max_len``), each row's events left-aligned and followed by padding::

    i5 i2 i9 i4      (length 4)
    i7 i3  0  0      (length 2)

Why right padding rather than the original seminar's packed ("sparse") rows or RecTools' left padding:

* attention needs a rectangular tensor anyway — the original seminar scattered its packed events into a padded
  tensor for the encoder and gathered them back afterwards; here the batch *is* that tensor;
* with right padding the causal mask of SASRec already hides every pad from every real position
  (pads come after the real events), so SASRec needs no padding mask at all and
  ``scaled_dot_product_attention(is_causal=True)`` runs its fused kernel; with left padding a
  real position would attend to the pads before it unless a second mask is built;
* the loss takes the real positions with one boolean mask (``targets > 0``), which is exactly the
  original seminar's packed layout, so full softmax never scores a pad.

Positions are counted **from the end** (0 = the most recent event), as in SASRec's left-padded
windows: the last event always has position 0, at training and at inference.

**Epochs** (:func:`length_bucketed_batches`): a seeded shuffle of the training sequences, then —
because ml-100k histories range from 2 to 200 events — batches of similar length: padding to the
longest sequence of a random batch wastes about half of the attention work. Every sequence is used
in every epoch; the last batch may be smaller (the original seminar's ``drop_last`` threw away 237 of 749
ml-100k training sequences every epoch).

**SASRec targets** (:func:`next_item_batch`): the shifted sequence. A user's last ``max_len + 1``
events ``s_1 … s_m`` give inputs ``s_1 … s_{m−1}`` and targets ``s_2 … s_m``: the output at
position t predicts the event after it. A user needs two events to give a target.

**BERT4Rec targets** (:func:`masked_item_batch`, the rules of RecTools' data preparator): each real
position of the last ``max_len + 1`` events is chosen with probability ``mask_prob``; a chosen
position becomes a target and its input is replaced by ``[MASK]`` with probability 0.8, by a random
item with 0.1, and left as it is with 0.1; every other position is not predicted. A sequence where
no position was chosen gets its last position masked (so every sequence gives a target, and the
model practises the inference case). At inference (:func:`inference_batch` with
``append_mask=True``) the ``[MASK]`` token is appended after the last ``max_len`` events and its
output scores the next item — hence ``max_len + 1`` tokens in training windows.

Users with fewer than two events are not trained on (neither model has a target for them), but
they can still be *served*: recommendations need only a history (see ``SASRec.recommend``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import polars as pl
import torch

PAD = 0


@dataclass(frozen=True)
class Sequences:
    """Item sequences stored flat: sequence ``r`` is ``tokens[offsets[r]:offsets[r + 1]]``.

    ``tokens``: ``int64`` item tokens (``item index + 1``) in time order; ``offsets``: ``(R + 1,)``
    starts (sequence ``r`` is the user or batch row ``r``).

    >>> s = Sequences.from_events(np.array([1, 0, 1, 0]), np.array([5, 2, 7, 3]), np.array([2, 1, 1, 2]), n_users=2)
    >>> s.offsets.tolist(), s.tokens.tolist(), s.lengths.tolist()
    ([0, 2, 4], [3, 4, 8, 6], [2, 2])
    """

    tokens: torch.Tensor
    offsets: torch.Tensor

    @classmethod
    def from_events(cls, user: np.ndarray, item: np.ndarray, timestamp: np.ndarray | None, n_users: int) -> Sequences:
        """One sequence per user ``0..n_users−1`` (empty for a user without events), events sorted by
        ``(timestamp, item)`` — ties in time are broken by the item index, as in
        :attr:`~seminar_lib.models.base.UserBatch.events`. ``timestamp`` None: item order."""
        user = np.asarray(user, dtype=np.int64)
        item = np.asarray(item, dtype=np.int64)
        keys = (item, user) if timestamp is None else (item, np.asarray(timestamp), user)
        order = np.lexsort(keys)
        counts = np.bincount(user, minlength=n_users)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        return cls(torch.from_numpy(item[order] + 1), torch.from_numpy(offsets))

    @classmethod
    def from_batch_events(cls, events: pl.DataFrame, n_rows: int) -> Sequences:
        """From ``UserBatch.events`` (``row, item, timestamp``, already sorted by row and time)."""
        rows = events["row"].to_numpy().astype(np.int64)
        if len(rows) > 1 and (np.diff(rows) < 0).any():
            raise ValueError("events must be sorted by row")
        counts = np.bincount(rows, minlength=n_rows)
        offsets = np.concatenate([[0], np.cumsum(counts)])
        tokens = events["item"].to_numpy().astype(np.int64) + 1
        return cls(torch.from_numpy(tokens), torch.from_numpy(offsets))

    def __len__(self) -> int:
        return self.offsets.shape[0] - 1

    @property
    def lengths(self) -> torch.Tensor:
        """``(R,)`` number of events of each sequence."""
        return self.offsets[1:] - self.offsets[:-1]

    def window(self, rows: torch.Tensor, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The last ``max_len`` tokens of sequences ``rows``, right-padded: ``(tokens B × L, lengths B)``
        with ``L = max(lengths)`` (0 for an empty batch or empty sequences).

        >>> s = Sequences(torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 4, 6]))
        >>> tokens, lengths = s.window(torch.tensor([0, 1]), 3)
        >>> tokens.tolist(), lengths.tolist()
        ([[2, 3, 4], [5, 6, 0]], [3, 2])
        """
        rows = rows.to(self.offsets.device)
        ends = self.offsets[rows + 1]
        lengths = (ends - self.offsets[rows]).clamp(max=max_len)
        width = int(lengths.max()) if rows.numel() else 0
        t = torch.arange(width, device=rows.device)
        valid = t[None, :] < lengths[:, None]
        index = ((ends - lengths)[:, None] + t[None, :]).clamp(max=max(self.tokens.shape[0] - 1, 0))
        tokens = self.tokens[index] if self.tokens.numel() else torch.zeros_like(index)
        return torch.where(valid, tokens, PAD), lengths


class SequenceBatch(NamedTuple):
    """A right-padded batch: ``inputs`` (``B × L`` tokens, 0 = pad), ``lengths`` (``B``, real tokens
    per row) and ``targets`` (``B × L`` item tokens to predict at each position, 0 = no target)."""

    inputs: torch.Tensor
    lengths: torch.Tensor
    targets: torch.Tensor

    def to(self, device: torch.device | str) -> SequenceBatch:
        return SequenceBatch(*(t.to(device) for t in self))


def next_item_batch(sequences: Sequences, rows: torch.Tensor, max_len: int) -> SequenceBatch:
    """SASRec's shifted-sequence batch of sequences ``rows``: inputs are the last ``max_len + 1``
    events without the final one, targets the same events shifted by one.

    >>> s = Sequences(torch.tensor([1, 2, 3, 4, 5, 6]), torch.tensor([0, 4, 6]))
    >>> b = next_item_batch(s, torch.tensor([0, 1]), max_len=2)
    >>> b.inputs.tolist(), b.targets.tolist(), b.lengths.tolist()
    ([[2, 3], [5, 0]], [[3, 4], [6, 0]], [2, 1])
    """
    tokens, lengths = sequences.window(rows, max_len + 1)
    if tokens.shape[1] < 2:
        raise ValueError("next_item_batch needs sequences with at least two events")
    inputs, targets = tokens[:, :-1], tokens[:, 1:]
    keep = torch.arange(inputs.shape[1], device=tokens.device)[None, :] < (lengths - 1)[:, None]
    return SequenceBatch(torch.where(keep, inputs, PAD), (lengths - 1).clamp(min=0), targets)


def masked_item_batch(sequences: Sequences, rows: torch.Tensor, max_len: int, n_items: int, *,
                      mask_prob: float = 0.15, generator: torch.Generator | None = None,
                      replace: tuple[float, float] = (0.8, 0.1)) -> SequenceBatch:
    """BERT4Rec's masked-item batch (rules in the module docstring) of the last ``max_len + 1``
    events of sequences ``rows``; ``[MASK]`` is the token ``n_items + 1``.

    ``replace = (p_mask, p_random)``: of the chosen positions, the share replaced by ``[MASK]`` and
    by a uniformly random item (the rest keep their item). Random numbers come from ``generator``
    (drawn on its device, then moved to the sequences' device).

    >>> s = Sequences(torch.tensor([1, 2, 3]), torch.tensor([0, 3]))
    >>> b = masked_item_batch(s, torch.tensor([0]), 5, n_items=3, mask_prob=0.0)  # nothing drawn: mask the last
    >>> b.inputs.tolist(), b.targets.tolist()
    ([[1, 2, 4]], [[0, 0, 3]])
    """
    if not 0 <= mask_prob <= 1:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob}")
    tokens, lengths = sequences.window(rows, max_len + 1)
    B, L = tokens.shape
    device = generator.device if generator is not None else tokens.device
    u = torch.rand((B, L), generator=generator, device=device).to(tokens.device)
    how = torch.rand((B, L), generator=generator, device=device).to(tokens.device)
    random_items = torch.randint(1, n_items + 1, (B, L), generator=generator, device=device).to(tokens.device)
    t = torch.arange(L, device=tokens.device)[None, :]
    real = t < lengths[:, None]
    chosen = real & (u < mask_prob)
    last = t == (lengths - 1)[:, None]
    chosen |= last & ~chosen.any(dim=1, keepdim=True) & real
    forced = last & chosen & ~(u < mask_prob)
    p_mask, p_random = replace
    to_mask = chosen & ((how < p_mask) | forced)
    to_random = chosen & ~to_mask & (how < p_mask + p_random)
    inputs = torch.where(to_mask, n_items + 1, torch.where(to_random, random_items, tokens))
    return SequenceBatch(inputs, lengths, torch.where(chosen, tokens, PAD))


def inference_batch(sequences: Sequences, rows: torch.Tensor, max_len: int, *, mask_token: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Inputs to score the next item: the last ``max_len`` events of each row, right-padded, and
    — for BERT4Rec — ``mask_token`` appended after them. Returns ``(inputs B × L, lengths B)``; the
    output at position ``lengths − 1`` predicts the next item.

    >>> s = Sequences(torch.tensor([1, 2, 3, 4]), torch.tensor([0, 3, 4]))
    >>> inference_batch(s, torch.tensor([0, 1]), 2, mask_token=9)[0].tolist()
    [[2, 3, 9], [4, 9, 0]]
    """
    tokens, lengths = sequences.window(rows, max_len)
    if mask_token is None:
        return tokens, lengths
    tokens = torch.cat([tokens, tokens.new_zeros(tokens.shape[0], 1)], dim=1)
    tokens[torch.arange(tokens.shape[0], device=tokens.device), lengths] = mask_token
    return tokens, lengths + 1


def length_bucketed_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator, *,
                            pool_batches: int = 64) -> list[torch.Tensor]:
    """One epoch of index batches over ``0..R−1`` (every index exactly once), grouped by length.

    A seeded permutation is cut into pools of ``pool_batches · batch_size`` sequences; each pool is
    sorted by length (stable, so the random order breaks ties), cut into batches, and the batches of
    all pools are shuffled. A batch then holds sequences of similar length, so little of it is
    padding, while which batch comes when is random. The last batch of a pool may be smaller.
    Pass ``pool_batches=1`` for plain random batches.

    >>> g = torch.Generator().manual_seed(0)
    >>> batches = length_bucketed_batches(torch.tensor([5, 1, 4, 2, 3]), 2, g)  # one pool: sorted
    >>> sorted(torch.cat(batches).tolist()), [len(b) for b in batches if len(b) == 1]
    ([0, 1, 2, 3, 4], [1])
    """
    if batch_size < 1 or pool_batches < 1:
        raise ValueError("batch_size and pool_batches must be positive")
    n = lengths.shape[0]
    order = torch.randperm(n, generator=generator, device=generator.device).to(lengths.device)
    batches: list[torch.Tensor] = []
    pool = batch_size * pool_batches
    for chunk in order.split(pool):
        if pool_batches > 1:
            chunk = chunk[torch.sort(lengths[chunk], stable=True).indices]
        batches += list(chunk.split(batch_size))
    shuffle = torch.randperm(len(batches), generator=generator, device=generator.device).tolist()
    return [batches[i] for i in shuffle]


def target_counts(sequences: Sequences, rows: torch.Tensor, max_len: int, n_items: int, *, shifted: bool) -> torch.Tensor:
    """How often each item (``n_items``, by item index) is a training target: the items of the
    training windows (the last ``max_len + 1`` events), without each sequence's first event when
    ``shifted`` (SASRec: the first event is never predicted). These are the frequencies of the
    *positives* — what in-batch negatives are drawn from — for the logQ correction."""
    tokens, lengths = sequences.window(rows, max_len + 1)
    real = torch.arange(tokens.shape[1], device=tokens.device)[None, :] < lengths[:, None]
    if shifted:
        real[:, 0] = False
    return torch.bincount(tokens[real] - 1, minlength=n_items)
