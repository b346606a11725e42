r"""Negative sampling of the two-tower model and the tensor helpers it needs.

**Negatives** (triplet, bpr) are uniform over the catalogue, never the positive
(:func:`seminar_lib.training.sample_negatives`), and with ``exclude_seen`` (default) redrawn while
they hit one of the user's training items. On ml-100k's training part a uniform negative is one of
the user's own items for 6.6 % of draws with one sample per user (the original seminar's scheme: its 7 %) and
for 12 % with one sample per observed pair (heavy users appear more often) — noise that pushes
down items the user likes; after the redraws, 0 %.
"""

from __future__ import annotations

import torch

from seminar_lib.training import sample_negatives


def ragged_rows(indptr: torch.Tensor, values: torch.Tensor,
                rows: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of a CSR-like pair (``indptr (n+1,)``, ``values (nnz,)``) gathered with tensor ops.

    Returns ``(flat, offsets, counts)``: the concatenated values of ``rows`` (``(T,)``), where each
    row starts in ``flat`` (``(R,)``, the ``offsets`` of ``F.embedding_bag``) and how many it has.

    >>> ragged_rows(torch.tensor([0, 2, 2, 5]), torch.tensor([7, 8, 1, 2, 3]), torch.tensor([2, 0]))
    (tensor([1, 2, 3, 7, 8]), tensor([0, 3]), tensor([3, 2]))
    """
    starts = indptr[rows]
    counts = indptr[rows + 1] - starts
    offsets = torch.cumsum(counts, 0) - counts
    # element t of the output, in row r, is values[starts[r] + (t − offsets[r])]
    shift = torch.repeat_interleave(starts - offsets, counts)
    return values[torch.arange(shift.shape[0], device=rows.device) + shift], offsets, counts


def pair_keys(users: torch.Tensor, items: torch.Tensor, n_items: int) -> torch.Tensor:
    """``user · n_items + item``: one int64 key per pair (sorted keys make a membership test)."""
    return users.long() * n_items + items.long()


def contains(sorted_keys: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Elementwise ``keys ∈ sorted_keys`` by binary search (``torch.searchsorted``)."""
    if sorted_keys.numel() == 0:
        return torch.zeros_like(keys, dtype=torch.bool)
    pos = torch.searchsorted(sorted_keys, keys).clamp(max=sorted_keys.numel() - 1)
    return sorted_keys[pos] == keys


def sample_unseen_negatives(users: torch.Tensor, positives: torch.Tensor, seen_keys: torch.Tensor, n_items: int,
                            n_negatives: int, generator: torch.Generator | None = None,
                            rounds: int = 20) -> torch.Tensor:
    """Uniform negatives ``(B, n_negatives)`` that are never the positive and, where possible, none
    of the user's training items.

    Draws with :func:`~seminar_lib.training.sample_negatives` (so ``≠`` positive always), then
    redraws — only the hits — while a negative's key ``user·n_items + item`` is in ``seen_keys``
    (sorted, see :func:`pair_keys`), at most ``rounds`` times: a user who has seen nearly the whole
    catalogue may keep a few seen negatives rather than loop for ever. Redraws are uniform over the
    other items, so the result is uniform over the user's unseen items.
    """
    neg = sample_negatives(positives, n_items, n_negatives, generator)
    rows, cols = contains(seen_keys, pair_keys(users[:, None].expand_as(neg), neg, n_items)).nonzero(as_tuple=True)
    for _ in range(rounds):
        if rows.numel() == 0:
            break
        redraw = sample_negatives(positives[rows], n_items, 1, generator)[:, 0]
        neg[rows, cols] = redraw
        still = contains(seen_keys, pair_keys(users[rows], redraw, n_items))  # only the redrawn ones are checked
        rows, cols = rows[still], cols[still]
    return neg
