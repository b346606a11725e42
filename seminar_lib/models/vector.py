r"""The one shape of the course's embedding models: a user vector, an item vector, their dot product.

A :class:`VectorRecommender` scores user ``u`` and item ``i`` by

.. math:: s_{ui} = x_u^\top y_i \;(+\ \text{the model's biases}),

and a subclass says only how to get the vectors — two hooks:

* ``_user_vectors(batch) → (B, d)``: the vectors of a :class:`~seminar_lib.models.base.UserBatch`
  (a row of a factor table, a tower over features and history, a transformer over the sequence);
* ``_item_vectors() → (n_items, d)``: every item's vector, in the order of ``self.items_``.

From them it derives ``_score`` (``X_B Yᵀ``, what ``recommend`` ranks), :meth:`score_pairs`,
:meth:`user_embeddings`, :meth:`item_embeddings` and so ``similar_items``. A model with biases (MF)
adds them in ``_add_biases``; one that computes a pair's score another way overrides ``_pair_scores``.
ALS, MF, DSSM, SASRec and BERT4Rec are vector recommenders (RecTools' ``VectorModel`` and implicit's
``MatrixFactorizationBase`` have the same shape).

The torch-trained ones (MF, DSSM, SASRec, BERT4Rec) also share what surrounds
:class:`~seminar_lib.training.Trainer`: the warm validation users and nDCG@10 of ``fit(..., valid=)``
(:meth:`_warm_valid`, :meth:`_validation_ndcg`) and the attributes a fit leaves (:meth:`_keep_training`).
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterable

import numpy as np
import polars as pl
import torch

from seminar_lib.columns import Columns
from seminar_lib.errors import EmptySplitError, require_columns
from seminar_lib.models.base import Recommender, UserBatch
from seminar_lib.training import TrainResult

U, I = Columns.user, Columns.item


class VectorRecommender(Recommender):
    """Base of the models whose score is a dot product of a user vector and an item vector (see the module)."""

    # -------------------------------------------------------------------------------- the two hooks
    @abstractmethod
    def _user_vectors(self, batch: UserBatch) -> torch.Tensor:
        """``(B, d)`` vectors of the batch's users, on ``self.device``."""

    @abstractmethod
    def _item_vectors(self) -> torch.Tensor:
        """``(n_items, d)`` vectors of every item (``self.items_`` order), on ``self.device``."""

    # ------------------------------------------------------------------------------------ derived
    def _add_biases(self, scores: torch.Tensor, batch: UserBatch) -> torch.Tensor:
        """``scores`` (``B × n_items``) plus the model's bias terms; none by default."""
        return scores

    def _score(self, batch: UserBatch) -> torch.Tensor:
        """``(B, n_items)``: :math:`X_B Y^\\top` (+ biases), the scores ``recommend`` ranks."""
        with torch.no_grad():
            return self._add_biases(self._user_vectors(batch) @ self._item_vectors().T, batch)

    def _fit_users(self) -> UserBatch:
        """Every user of the fit data as one batch, with their training histories."""
        viewed = self.viewed_.tocsr()
        viewed.sort_indices()
        return UserBatch(np.arange(len(self.users_)), viewed, self.users_.ids)

    def user_embeddings(self) -> torch.Tensor:
        """``(n_users, d)`` vectors of the fit users (``self.users_`` order, from their training
        histories), so ``user_embeddings() @ item_embeddings().T`` are the scores ``recommend``
        ranks (before any biases)."""
        self._check_fitted()
        with torch.no_grad():
            return self._user_vectors(self._fit_users()).detach()

    def item_embeddings(self) -> torch.Tensor:
        """``(n_items, d)`` item vectors (``self.items_`` order), also used by ``similar_items`` (cosine)."""
        self._check_fitted()
        with torch.no_grad():
            return self._item_vectors().detach()

    def _pair_scores(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Scores ``(n,)`` of pairs of dense indices: :math:`x_u^\\top y_i` of the embeddings."""
        return (self.user_embeddings()[users] * self.item_embeddings()[items]).sum(-1)

    def score_pairs(self, user_ids: Iterable | pl.Series, item_ids: Iterable | pl.Series) -> np.ndarray:
        """The model's score of each pair ``(user_ids[k], item_ids[k])`` (external ids of fit users and
        items; unknown ids raise) as ``float64`` of the same length — e.g. to compare held-out pairs
        with random ones (:func:`~seminar_lib.evaluation.real_vs_random`)."""
        self._check_fitted()
        users = pl.Series(U, list(user_ids) if not isinstance(user_ids, pl.Series) else user_ids,
                          dtype=self.users_.ids.dtype, strict=False)
        items = pl.Series(I, list(item_ids) if not isinstance(item_ids, pl.Series) else item_ids,
                          dtype=self.items_.ids.dtype, strict=False)
        if users.len() != items.len():
            raise ValueError(f"score_pairs needs as many users as items, got {users.len()} and {items.len()}")
        u = torch.tensor(self.users_.transform(users).to_numpy(), dtype=torch.long, device=self.device)
        i = torch.tensor(self.items_.transform(items).to_numpy(), dtype=torch.long, device=self.device)
        with torch.no_grad():
            return self._pair_scores(u, i).double().cpu().numpy()

    # ------------------------------------------------------------- around the Trainer (torch models)
    def _warm_valid(self, valid: pl.DataFrame | None) -> pl.DataFrame | None:
        """``valid``'s rows (``user_id, item_id``) of users seen at fit; None stays None."""
        if valid is None:
            return None
        require_columns(valid.columns, (U, I), f"valid passed to {self.name}.fit")
        warm = valid.filter(self.users_.contains(valid[U]))
        if warm.is_empty():
            raise EmptySplitError(f"{self.name}.fit: no user of valid appears in the training interactions")
        return warm.select(U, I)

    def _validation_ndcg(self, valid: pl.DataFrame) -> float:
        """nDCG@10 of the current weights on the warm ``valid`` rows, recommending with filter-viewed
        (the Trainer calls it in eval mode; it draws no random numbers)."""
        from seminar_lib.metrics import ndcg

        recos = self.recommend(valid[U].unique(), k=10, filter_viewed=True)
        return float(ndcg(recos, valid, k=10))

    def _keep_training(self, result: TrainResult) -> None:
        """What a fit leaves: ``train_result_``, ``history_`` (the per-epoch frame), ``epoch_seconds_``
        and ``best_epoch_`` (the epoch whose weights the model holds)."""
        self.train_result_ = result
        self.history_ = result.history
        self.epoch_seconds_ = result.epoch_seconds
        self.best_epoch_ = result.kept_epoch
