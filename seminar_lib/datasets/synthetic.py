"""A seeded, offline dataset with signal for every model of the course.

Generative story (all numpy, vectorised over users):

* items have a ``category`` (genre-like) and a latent vector ``v_i = c_{category(i)} + ε``,
  and a Zipf popularity ``log p_i = −α·log(rank_i)``;
* users have ``age_group`` and ``gender``; their taste ``u = a_{age} + g_{gender} + ε`` depends on
  them, so user features predict preferences;
* event ``t`` of a user is, with probability ``repeat_prob``, a re-consumption of an item the user
  already has; else with probability ``sequential_prob`` the successor ``next(i_{t−1})`` of the
  previous item (a fixed cycle through the items of each category: sequential structure); else a
  draw from ``softmax(β·u·v_i/√d + log p_i)`` (collaborative structure plus a popularity skew);
* timestamps: each user starts at a random time in the first 80 % of ``days`` and has
  exponential gaps between events, so a global time split leaves users on both sides.

Users are generated in chunks (:data:`CHUNK_CELLS` (user, step) cells), each reading its rows of the
(user, step) random arrays from generators advanced to their place in one stream, so the output is the
same for any chunking — the same as drawing everything at once — and memory does not grow with the
number of users; the (user × item) preference weights exist only a cache-sized block of users at a
time (:data:`BLOCK_CELLS`). Sampling is exact over every item: per user, one exponential per item and
a two-level prefix sum (see :func:`_preference_draws`); 1M users × 15k items is ``1.5·10¹⁰``
exponentials, well under a minute on two cores.

With ``repeat_prob = 0`` only the first event of each (user, item) pair is kept (like MovieLens);
with ``repeat_prob > 0`` repeats stay (like orders), so PersonalTopPopular has something to find.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
from threadpoolctl import threadpool_limits

from seminar_lib.datasets.base import RecDataset, make_interactions
from seminar_lib.datasets.registry import DatasetSpec, register
from seminar_lib.feature_specs import FeaturePreset, binned, category

AGE_GROUPS = ("18-24", "25-34", "35-44", "45-54", "55+")
GENDERS = ("F", "M")
START = np.datetime64("2024-01-01T00:00:00", "s").astype(np.int64)
# (user, step) cells generated together: a chunk's random draws, events and times are in memory at once
CHUNK_CELLS = 1 << 21
# (user × item) cells of the preference weights worked on at once: a block that stays in a CPU's L2/L3
# cache and is big enough that numpy's per-call overhead is small
BLOCK_CELLS = 1 << 20
# items per segment of the two-level prefix sums (see _preference_draws)
SEGMENT = 64
_THREADS = min(8, os.cpu_count() or 1)


def generate(
    n_users: int = 1000,
    n_items: int = 500,
    mean_events: float = 40.0,
    min_events: int = 5,
    n_categories: int = 8,
    dim: int = 16,
    popularity_alpha: float = 1.0,
    taste_strength: float = 2.0,
    sequential_prob: float = 0.3,
    repeat_prob: float = 0.0,
    days: int = 180,
    seed: int = 0,
) -> RecDataset:
    """Generate the ``synthetic`` dataset (see the module docstring for the model).

    ``users``: ``user_id, age_group, gender``; ``items``: ``item_id, title, category, year``.

    >>> ds = generate(n_users=20, n_items=10, seed=3)
    >>> ds.interactions[["user_id", "item_id"]].is_duplicated().any()
    False
    """
    if not (0 <= repeat_prob <= 1 and 0 <= sequential_prob <= 1 and repeat_prob + sequential_prob <= 1):
        raise ValueError("repeat_prob and sequential_prob must be probabilities with a sum of at most 1")
    if n_users < 1 or n_items < 2 or min_events < 1 or mean_events < min_events:
        raise ValueError("need n_users ≥ 1, n_items ≥ 2 and 1 ≤ min_events ≤ mean_events")
    rng = np.random.default_rng(seed)
    n_categories = min(n_categories, n_items)

    category = rng.permutation(np.arange(n_items) % n_categories)
    centres = rng.normal(size=(n_categories, dim))
    item_vec = centres[category] + 0.6 * rng.normal(size=(n_items, dim))
    log_pop = -popularity_alpha * np.log1p(rng.permutation(n_items))

    age = rng.integers(0, len(AGE_GROUPS), n_users)
    gender = rng.integers(0, len(GENDERS), n_users)
    user_vec = (rng.normal(size=(len(AGE_GROUPS), dim))[age] + 0.7 * rng.normal(size=(len(GENDERS), dim))[gender]
                + 0.7 * rng.normal(size=(n_users, dim)))

    sigma = 0.6
    lengths = np.exp(rng.normal(np.log(mean_events) - sigma**2 / 2, sigma, n_users)).round().astype(np.int64)
    lengths = np.clip(lengths, min_events, 10 * int(mean_events))
    # Without repeats, duplicates are dropped after generation: draw more steps, keep the first `length` distinct.
    steps = lengths if repeat_prob > 0 else np.minimum(3 * lengths, 3 * n_items)
    horizon = int(steps.max())

    # The random stream is laid out as if every (user, step) array were drawn at once: preference draws,
    # the category cycles, event modes, repeat picks, start times, gaps. Each chunk of users reads its rows
    # from generators advanced to its place in that stream, so the output does not depend on the chunking.
    cells = n_users * horizon
    draw_rng = _fork(rng)
    _advance(rng, cells)
    successor = _category_cycles(category, rng)
    mode_rng, pick_rng = _fork(rng), _fork(rng, cells)
    _advance(rng, 2 * cells)
    start = rng.uniform(0, 0.8 * days * 86400, n_users)
    gap_scale = 0.2 * days * 86400 / mean_events

    chunk = max(1, CHUNK_CELLS // horizon)
    frames = []
    for lo in range(0, n_users, chunk):
        hi = min(lo + chunk, n_users)
        frames.append(_chunk_events(
            lo, hi, user_vec[lo:hi], item_vec, log_pop, taste_strength,
            steps[lo:hi], lengths[lo:hi], start[lo:hi],
            successor, draw_rng.random((hi - lo, horizon)), mode_rng.random((hi - lo, horizon)),
            pick_rng.random((hi - lo, horizon)), rng.exponential(gap_scale, (hi - lo, horizon)),
            repeat_prob, sequential_prob))
    interactions = make_interactions(pl.concat(frames)).sort("user_id", "timestamp", "item_id")

    users = pl.DataFrame({
        "user_id": np.arange(1, n_users + 1),
        "age_group": np.array(AGE_GROUPS)[age],
        "gender": np.array(GENDERS)[gender],
    })
    items = pl.DataFrame({
        "item_id": np.arange(1, n_items + 1),
        "title": [f"item {i}" for i in range(1, n_items + 1)],
        "category": [f"category {c}" for c in category],
        "year": rng.integers(1980, 2024, n_items).astype(np.int32),
    })
    return RecDataset("synthetic", interactions, users, items,
                      description=f"Synthetic (seed {seed}): {n_users} users, {n_items} items, taste driven by "
                                  f"user features, {sequential_prob:.0%} sequential successors, "
                                  f"{repeat_prob:.0%} repeats.")



def _fork(rng: np.random.Generator, skip: int = 0) -> np.random.Generator:
    """A generator at ``rng``'s position in its stream plus ``skip`` 64-bit draws (``rng`` itself is not moved)."""
    bit_generator = type(rng.bit_generator)()
    bit_generator.state = rng.bit_generator.state
    if skip:
        bit_generator.advance(skip)
    return np.random.Generator(bit_generator)


def _advance(rng: np.random.Generator, draws: int) -> None:
    """Move ``rng`` on by ``draws`` 64-bit draws, as drawing that many doubles would: the bit generator's
    buffered 32-bit half (used by small-range integers) survives, as it does across ``random()`` calls."""
    buffered = {key: rng.bit_generator.state[key] for key in ("has_uint32", "uinteger")}
    rng.bit_generator.advance(draws)
    rng.bit_generator.state = {**rng.bit_generator.state, **buffered}


def _preference_draws(lo: int, user_vec: np.ndarray, item_vec: np.ndarray, log_pop: np.ndarray, strength: float,
                      uniforms: np.ndarray, needed: np.ndarray) -> np.ndarray:
    """Item draws (``n × horizon``, 0-based; ``-1`` where not ``needed``) of users ``lo … lo+n−1`` from their
    softmax preferences ``logits = (β/√d/√(1 + 0.7² + 0.7²))·u·vᵀ + log p``, ``w = exp(logits − max)``: each
    uniform ``x`` picks the first item whose prefix sum of ``w`` exceeds ``x·Σw`` (inverse-CDF sampling).

    The prefix sums are two-level, so no full cumulative sum is ever taken: the items are cut into
    :data:`SEGMENT` consecutive ones (the last segment padded with zero weights), each user's segment
    totals ``s_b`` are summed (a vectorised reduction) and cumulated (``n_items / SEGMENT`` numbers);
    a draw finds its segment in those and cumulates only that segment's ``SEGMENT`` weights. Per user
    that costs one ``exp`` per item plus ``≈ 2·√n_items`` operations per draw, instead of a sequential
    prefix sum over every item; the draws are those of the one-level CDF up to float rounding at a
    boundary. Rows are worked in blocks of :data:`BLOCK_CELLS` (user × item) cells — the block's logits
    are its own small matrix product, so every pass stays in the CPU's cache — shared among threads
    (numpy and BLAS release the GIL); nothing depends on the blocking or the threads.
    """
    n, n_items = len(user_vec), len(item_vec)
    n_segments = -(-n_items // SEGMENT)
    width = n_segments * SEGMENT
    scale = strength / np.sqrt(item_vec.shape[1]) / np.sqrt(1.0 + 0.7**2 + 0.7**2)
    # logits as one small matrix product per block: [scale·u, 1] · [v, log p]ᵀ (log p rides along as a column);
    # the items are padded to whole segments with zero vectors and log p = −10⁴, whose weight exp(−10⁴) is 0
    users = np.hstack([scale * user_vec, np.ones((n, 1))])
    items = np.zeros((item_vec.shape[1] + 1, width))
    items[:-1, :n_items] = item_vec.T
    items[-1] = -1e4
    items[-1, :n_items] = log_pop
    rows_per_block = max(1, BLOCK_CELLS // width)
    draws = np.full(uniforms.shape, -1, dtype=np.int64)

    def block(b0: int) -> None:
        b1 = min(b0 + rows_per_block, n)
        w = users[b0:b1] @ items  # (rows, width): stays in the CPU's cache for the passes below
        w -= w.max(axis=1, keepdims=True)
        np.exp(w, out=w)
        segments = w.reshape(b1 - b0, n_segments, SEGMENT)
        ends = np.cumsum(segments.sum(axis=2), axis=1)  # (rows, n_segments): Σw up to each segment's end
        row, step = np.nonzero(needed[b0:b1])
        target = uniforms[b0 + row, step] * ends[row, -1]
        # the segment: one search in the rows' normalised segment ends, each row offset by its index
        local = np.arange(b1 - b0)[:, None]
        segment = np.searchsorted((ends / ends[:, -1:] + local).ravel(), uniforms[b0 + row, step] + row, side="right")
        segment = np.minimum(segment - row * n_segments, n_segments - 1)
        before = np.where(segment > 0, ends[row, np.maximum(segment - 1, 0)], 0.0)
        inside = np.cumsum(segments[row, segment], axis=1) + before[:, None]
        offset = np.minimum((inside <= target[:, None]).sum(axis=1), SEGMENT - 1)
        draws[b0 + row, step] = np.minimum(segment * SEGMENT + offset, n_items - 1)

    starts = range(0, n, rows_per_block)
    if len(starts) > 1 and _THREADS > 1:
        # one BLAS thread per block: the blocks are already spread over this pool's threads
        with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(_THREADS) as pool:
            list(pool.map(block, starts))
    else:
        for b0 in starts:
            block(b0)
    return draws


def _chunk_events(lo: int, hi: int, user_vec: np.ndarray, item_vec: np.ndarray, log_pop: np.ndarray, strength: float,
                  steps: np.ndarray, lengths: np.ndarray, start: np.ndarray, successor: np.ndarray,
                  uniforms: np.ndarray, mode: np.ndarray, pick: np.ndarray, gaps: np.ndarray,
                  repeat_prob: float, sequential_prob: float) -> pl.DataFrame:
    """The events of users ``lo … hi−1``: ``user_id, item_id, timestamp`` (the (user, step) arrays are
    ``(hi − lo) × horizon``; ``uniforms`` pick preference draws through each user's softmax CDF).

    Memory is ``(hi − lo) × horizon`` numbers plus one block of preference weights, whatever the number
    of users and items."""
    n, horizon = uniforms.shape
    # a preference draw is used at a user's first step and where the event mode is neither repeat nor successor
    steps_axis = np.arange(horizon)[None, :]
    needed = (steps_axis < steps[:, None]) & ((steps_axis == 0) | (mode >= repeat_prob + sequential_prob))
    draws = _preference_draws(lo, user_vec, item_vec, log_pop, strength, uniforms, needed)
    rows = np.arange(lo, lo + n)[:, None]

    seq = np.empty((n, horizon), dtype=np.int64)
    seq[:, 0] = draws[:, 0]
    local = np.arange(n)
    for t in range(1, horizon):
        repeated = seq[local, (pick[:, t] * t).astype(np.int64)]
        seq[:, t] = np.where(mode[:, t] < repeat_prob, repeated,
                             np.where(mode[:, t] < repeat_prob + sequential_prob, successor[seq[:, t - 1]], draws[:, t]))

    keep = np.arange(horizon)[None, :] < steps[:, None]
    frame = pl.DataFrame({"user_id": np.broadcast_to(rows, (n, horizon))[keep] + 1, "item_id": seq[keep] + 1})
    if repeat_prob == 0:
        frame = frame.unique(["user_id", "item_id"], keep="first", maintain_order=True)
    # position of each kept event in its user's sequence; the user's first `length` events are kept
    user0 = frame["user_id"].to_numpy() - 1 - lo
    position = frame.select(pl.int_range(pl.len()).over("user_id")).to_series().to_numpy()
    kept = position < lengths[user0]
    user0, position = user0[kept], position[kept]
    times = start[:, None] + np.cumsum(gaps, axis=1)
    return frame.filter(pl.Series(kept)).with_columns(
        pl.Series("timestamp", START + times[user0, position].astype(np.int64)))

def _category_cycles(category: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``successor[i]``: the next item after ``i`` in a random cycle through the items of its category."""
    successor = np.empty(len(category), dtype=np.int64)
    for c in np.unique(category):  # one step per category, not per item
        members = rng.permutation(np.flatnonzero(category == c))
        successor[members] = np.roll(members, -1)
    return successor


def _parse(folder: Path | None, **options: object) -> RecDataset:
    return generate(**options)  # type: ignore[arg-type]


register(DatasetSpec(
    name="synthetic",
    description="Seeded synthetic interactions with user/item features, sequential and (optional) repeat structure",
    parser=_parse,
    source="generated",
    license_note="Generated locally; free to share.",
    features=FeaturePreset(
        users=(category("age_group"), category("gender")),
        items=(category("category"), binned("year", 10, name="decade")),
        description="users: age_group, gender; items: category, decade",
    ),
))
