"""Sequential models, the data preparator: sequences, right-padded batches, SASRec and BERT4Rec targets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seminar_lib.models.sequential.data import (PAD, Sequences, inference_batch, length_bucketed_batches,
                                                masked_item_batch, next_item_batch, target_counts)


def seqs(*rows: list[int]) -> Sequences:
    """Sequences of the given token rows (tokens = item index + 1)."""
    tokens = torch.tensor([t for r in rows for t in r], dtype=torch.long)
    offsets = torch.tensor(np.concatenate([[0], np.cumsum([len(r) for r in rows])]), dtype=torch.long)
    return Sequences(tokens, offsets)


def test_sequences_are_sorted_by_time_then_item_and_shifted_by_one():
    user = np.array([0, 0, 0, 1, 2, 2])
    item = np.array([4, 2, 3, 0, 1, 0])
    ts = np.array([30, 10, 10, 5, 2, 1])
    s = Sequences.from_events(user, item, ts, n_users=4)
    assert s.offsets.tolist() == [0, 3, 4, 6, 6]                          # user 3 has no events
    assert s.tokens.tolist() == [3, 4, 5, 1, 1, 2]                        # tie at t=10: item 2 before 3; +1 = token
    assert s.lengths.tolist() == [3, 1, 2, 0]


def test_window_takes_the_last_events_right_padded_to_the_batch_longest():
    s = seqs([1, 2, 3, 4, 5], [6, 7], [8])
    tokens, lengths = s.window(torch.tensor([2, 0, 1]), max_len=3)
    assert tokens.tolist() == [[8, 0, 0], [3, 4, 5], [6, 7, 0]]
    assert lengths.tolist() == [1, 3, 2]
    tokens, _ = s.window(torch.tensor([1, 2]), max_len=10)
    assert tokens.shape == (2, 2)                                          # width = longest in the batch, not max_len


def test_next_item_batch_is_the_shifted_sequence():
    s = seqs([1, 2, 3, 4, 5], [6, 7])
    b = next_item_batch(s, torch.tensor([0, 1]), max_len=3)
    # last max_len + 1 = 4 events of row 0: 2 3 4 5 → inputs 2 3 4, targets 3 4 5
    assert b.inputs.tolist() == [[2, 3, 4], [6, 0, 0]]
    assert b.targets.tolist() == [[3, 4, 5], [7, 0, 0]]
    assert b.lengths.tolist() == [3, 1]
    assert ((b.inputs == PAD) == (b.targets == PAD)).all()                 # a target exactly where there is an input


def test_next_item_batch_matches_the_seed_slicing_for_every_length():
    rng = np.random.default_rng(0)
    rows = [list(rng.integers(1, 50, size=n)) for n in (2, 3, 7, 12)]
    s = seqs(*rows)
    b = next_item_batch(s, torch.arange(4), max_len=5)
    for r, items in enumerate(rows):                                      # seed: items[:-1][-m:], items[1:][-m:]
        n = b.lengths[r]
        assert b.inputs[r, :n].tolist() == items[:-1][-5:]
        assert b.targets[r, :n].tolist() == items[1:][-5:]


def test_inference_batch_appends_the_mask_after_the_last_events():
    s = seqs([1, 2, 3, 4], [5])
    tokens, lengths = inference_batch(s, torch.tensor([0, 1]), max_len=3)
    assert tokens.tolist() == [[2, 3, 4], [5, 0, 0]] and lengths.tolist() == [3, 1]
    tokens, lengths = inference_batch(s, torch.tensor([0, 1]), max_len=3, mask_token=99)
    assert tokens.tolist() == [[2, 3, 4, 99], [5, 99, 0, 0]] and lengths.tolist() == [4, 2]


def test_masking_rules_probability_and_80_10_10():
    n_items, L, B = 50, 40, 2000
    s = seqs(*[list(range(1, L + 1))] * B)
    gen = torch.Generator().manual_seed(0)
    b = masked_item_batch(s, torch.arange(B), max_len=L, n_items=n_items, mask_prob=0.2, generator=gen)
    chosen = b.targets > 0
    share = chosen.float().mean().item()
    assert abs(share - 0.2) < 0.01                                         # mask_prob of the positions are targets
    original = s.window(torch.arange(B), L + 1)[0]
    assert (b.targets[chosen] == original[chosen]).all()                   # a target is the original item
    assert (b.inputs[~chosen] == original[~chosen]).all()                  # other positions are untouched
    masked = (b.inputs == n_items + 1) & chosen
    kept = (b.inputs == original) & chosen
    replaced = chosen & ~masked & ~kept
    n = chosen.sum().item()
    assert abs(masked.sum().item() / n - 0.8) < 0.02
    # a random replacement can draw the original item back (probability 1/n_items): 0.1 + 0.1/n kept
    assert abs(kept.sum().item() / n - (0.1 + 0.1 / n_items)) < 0.015
    assert abs(replaced.sum().item() / n - 0.1 * (1 - 1 / n_items)) < 0.015
    assert (b.inputs[replaced] >= 1).all() and (b.inputs[replaced] <= n_items).all()


def test_masking_never_touches_padding_and_every_sequence_has_a_target():
    s = seqs([1, 2], [3, 4, 5, 6, 7], [8, 9, 10])
    gen = torch.Generator().manual_seed(1)
    for _ in range(20):
        b = masked_item_batch(s, torch.arange(3), max_len=10, n_items=10, mask_prob=0.1, generator=gen)
        pad = torch.arange(b.inputs.shape[1])[None, :] >= b.lengths[:, None]
        assert (b.inputs[pad] == PAD).all() and (b.targets[pad] == PAD).all()
        assert ((b.targets > 0).sum(dim=1) >= 1).all()


def test_masking_with_nothing_drawn_masks_the_last_position():
    s = seqs([1, 2, 3], [4, 5])
    b = masked_item_batch(s, torch.arange(2), max_len=5, n_items=9, mask_prob=1e-9,
                          generator=torch.Generator().manual_seed(0))
    assert b.inputs.tolist() == [[1, 2, 10], [4, 10, 0]]
    assert b.targets.tolist() == [[0, 0, 3], [0, 5, 0]]


def test_masked_windows_hold_max_len_plus_one_events():
    s = seqs(list(range(1, 11)))
    b = masked_item_batch(s, torch.tensor([0]), max_len=4, n_items=20, mask_prob=0.5,
                          generator=torch.Generator().manual_seed(0))
    assert b.lengths.tolist() == [5]                                      # max_len events + the [MASK] at inference


def test_length_bucketed_epoch_uses_every_sequence_once_no_drop_last():
    lengths = torch.randint(2, 200, (749,), generator=torch.Generator().manual_seed(0))
    gen = torch.Generator().manual_seed(0)
    batches = length_bucketed_batches(lengths, 256, gen)
    assert sorted(torch.cat(batches).tolist()) == list(range(749))       # the seed dropped 237 of 749
    assert sorted(len(b) for b in batches) == [237, 256, 256]
    assert max(lengths[b].max() - lengths[b].min() for b in batches) < 100  # similar lengths within a batch
    again = length_bucketed_batches(lengths, 256, torch.Generator().manual_seed(0))
    assert all(torch.equal(a, b) for a, b in zip(batches, again))        # seeded
    nxt = length_bucketed_batches(lengths, 256, gen)
    assert not all(torch.equal(a, b) for a, b in zip(batches, nxt))       # a new order every epoch


def test_plain_random_batches_with_pool_of_one():
    lengths = torch.arange(10)
    batches = length_bucketed_batches(lengths, 3, torch.Generator().manual_seed(0), pool_batches=1)
    assert sorted(torch.cat(batches).tolist()) == list(range(10))
    assert sorted(len(b) for b in batches) == [1, 3, 3, 3]


def test_target_counts_count_the_positives_of_the_training_windows():
    s = seqs([1, 2, 3, 2], [2, 1])
    # SASRec: targets are every event but the first: 2 3 2 | 1 → items (token − 1) 1, 2, 1, 0
    assert target_counts(s, torch.arange(2), 10, 3, shifted=True).tolist() == [1, 2, 1]
    assert target_counts(s, torch.arange(2), 10, 3, shifted=False).tolist() == [2, 3, 1]
    # only the last max_len + 1 = 2 events of the first sequence are in its window: 3 2 → target 2
    assert target_counts(s, torch.tensor([0]), 1, 3, shifted=True).tolist() == [0, 1, 0]


def test_batch_needs_two_events():
    with pytest.raises(ValueError, match="two events"):
        next_item_batch(seqs([1], [2]), torch.arange(2), max_len=5)
