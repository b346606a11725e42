"""Popularity baselines."""

from __future__ import annotations

import numpy as np
import torch

from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch


class TopPopular(Recommender):
    """Recommend the items the most users interacted with (the same list for everyone).

    ``score(i) = |{u : (u, i) ∈ train}|`` (distinct users, so repeat purchases count once); ties
    go to the lower ``item_id``. Any user can be served, including users unseen at fit.
    """

    supports_cold_users = True

    def _fit(self, data: EncodedInteractions) -> None:
        users_per_item = np.bincount(data.matrix.tocoo().col, minlength=data.n_items)  # one entry per (u, i) pair
        self.popularity_ = torch.as_tensor(users_per_item, dtype=torch.float32)

    def _score(self, batch: UserBatch) -> torch.Tensor:
        return self.popularity_.expand(len(batch.user), -1).clone()
