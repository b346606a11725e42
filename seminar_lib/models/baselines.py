"""Baselines: random lists, global popularity, a user's own popular items, and their blend.

Taught in notebook 01 (data & baselines).
"""

from __future__ import annotations

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a bijective mix of 64-bit integers (uint64 arithmetic wraps)."""
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def keyed_uniform(seed: int, user_keys: np.ndarray, n_items: int) -> np.ndarray:
    """``B × n_items`` uniforms in (0, 1) that depend only on ``(seed, user key, item index)``.

    A counter-based generator: each value is a hash, so a user's draws do not depend on which other
    users are scored with it, on batching, or on order — the same seed gives the same list per user.
    """
    with np.errstate(over="ignore"):
        base = _splitmix64(_splitmix64(np.full(len(user_keys), seed, dtype=np.uint64)) ^ user_keys.astype(np.uint64))
        h = _splitmix64(base[:, None] ^ _splitmix64(np.arange(n_items, dtype=np.uint64))[None, :])
    return ((h >> np.uint64(11)).astype(np.float64) + 0.5) * 2.0**-53


def user_keys(ids: pl.Series) -> np.ndarray:
    """64-bit keys of external user ids: the id itself for integers, a polars hash for strings."""
    if ids.dtype.is_integer():
        return ids.cast(pl.Int64).to_numpy().view(np.uint64)
    return ids.hash(seed=0).to_numpy()


class Random(Recommender):
    """Random lists, uniform or popularity-weighted, reproducible per user.

    ``weighting="uniform"``: every item equally likely. ``weighting="popularity"``: item i is drawn
    with probability ∝ its number of train users n_i, without replacement — implemented as the
    Efraimidis–Spirakis race: with :math:`U_{ui} \\sim \\mathcal U(0, 1)`, rank by
    :math:`\\log U_{ui} / n_i` (the top k of these keys is a weighted sample without replacement).
    The uniforms come from :func:`keyed_uniform` keyed by the external user id, so a user's list
    depends only on ``seed`` and the user (and the catalogue). (The original seminar's version assigned the probabilities to the wrong items: two unordered group-bys.)
    """

    supports_cold_users = True

    def __init__(self, weighting: str = "uniform", *, seed: int = 0):
        if weighting not in ("uniform", "popularity"):
            raise ValueError(f"weighting must be 'uniform' or 'popularity', got {weighting!r}")
        self.weighting, self.seed = weighting, seed

    @property
    def name(self) -> str:
        return "Random" if self.weighting == "uniform" else "RandomPopular"

    def _fit(self, data: EncodedInteractions) -> None:
        self.popularity_ = np.bincount(data.matrix.tocoo().col, minlength=data.n_items).astype(np.float64)

    def _score(self, batch: UserBatch) -> torch.Tensor:
        u = keyed_uniform(self.seed, user_keys(batch.ids), len(self.popularity_))
        scores = u if self.weighting == "uniform" else np.log(u) / self.popularity_[None, :]
        return torch.from_numpy(scores)


class TopPopular(Recommender):
    """Recommend the items the most users interacted with (the same list for everyone).

    ``score(i) = |{u : (u, i) ∈ train}|`` (distinct users, so repeat purchases count once); ties
    go to the lower ``item_id``. Any user can be served, including users unseen at fit.

    Everyone shares one ranking, so a user's list is its first ``k`` unseen items (an anti-join of the
    ranking with the user's history, :meth:`~seminar_lib.models.base.Recommender._top_k_shared`): no
    users × items score matrix is built.
    """

    supports_cold_users = True

    def _fit(self, data: EncodedInteractions) -> None:
        users_per_item = np.bincount(data.matrix.tocoo().col, minlength=data.n_items)  # one entry per (u, i) pair
        self.popularity_ = users_per_item.astype(np.float32)

    def _score_shared(self) -> np.ndarray:
        return self.popularity_


class PersonalTopPopular(Recommender):
    """A user's own most frequent items: ``score(u, i) = w_ui``, the user's summed weight of item i
    (with weight 1 per event: how many times u consumed i). Items the user never had are not
    recommended, so lists can be short or empty.

    Useful where people repeat (orders, groceries): use ``filter_viewed=False``. Where they do not
    (movies), every candidate is already seen and the lists are empty once seen items are filtered.
    The history comes from the batch, so ``interactions=`` passed to ``recommend`` (e.g. train +
    validation) is used for users seen at fit as well as for new users.
    """

    scores_from_history = True

    def _fit(self, data: EncodedInteractions) -> None:
        """Nothing to learn: a user's list is their own history, read at ``recommend`` time."""

    def _score_sparse(self, batch: UserBatch) -> sp.csr_matrix:
        history = batch.history.copy()
        history.data[history.data <= 0] = 0.0  # only items with positive weight are candidates
        history.eliminate_zeros()
        return history


class PersonalThenGlobal(Recommender):
    """The user's own items first (by weight, as :class:`PersonalTopPopular`), then global
    popularity (as :class:`TopPopular`) to fill the list:
    ``score(u, i) = w_ui + n_i / (max_j n_j + 1)`` — the popularity term is below 1, so any personal
    item outranks every other item and popularity only breaks ties and fills.
    """

    supports_cold_users = True

    def _fit(self, data: EncodedInteractions) -> None:
        users_per_item = np.bincount(data.matrix.tocoo().col, minlength=data.n_items).astype(np.float64)
        self.popularity_ = torch.from_numpy(users_per_item / (users_per_item.max() + 1.0))

    def _score(self, batch: UserBatch) -> torch.Tensor:
        counts = torch.from_numpy(batch.history.toarray()).to(torch.float64)
        return counts + self.popularity_
