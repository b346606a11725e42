"""The recommender interface every model of the course follows (modelled on RecTools).

``model.fit(interactions)`` learns from a table in the common shape; then
``model.recommend(users, k)`` returns ``user_id, item_id, score, rank`` sorted by user, then rank,
with ties broken by ``item_id`` (ascending), and ``model.similar_items(items, k)`` gives
item-to-item neighbours for models with item embeddings.

A subclass implements ``_fit(data)`` and ``_score(batch)``; the base class does the id encoding,
the batching, filtering of already-seen items, the policy for users it cannot score and the
deterministic top-k.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar, Literal

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch

from seminar_lib.columns import Columns
from seminar_lib.errors import SchemaError, UnknownUsersError, require_columns
from seminar_lib.splits import IdEncoder
from seminar_lib.topk import topk_deterministic

U, I, T, W = Columns.user, Columns.item, Columns.timestamp, Columns.weight
Policy = Literal["raise", "warn", "ignore"]


@dataclass(frozen=True)
class EncodedInteractions:
    """Training interactions with dense ids: ``user[j], item[j]`` in ``0..n−1``; ``timestamp[j]``
    (µs since the epoch, or None); ``matrix`` is the ``n_users × n_items`` CSR matrix of summed
    weights (the only place the weights are kept)."""

    user: np.ndarray
    item: np.ndarray
    timestamp: np.ndarray | None
    n_users: int
    n_items: int
    matrix: sp.csr_matrix


@dataclass(frozen=True)
class UserBatch:
    """Users to score together.

    ``ids``: the external user ids; ``user``: dense user index at fit time (−1 for a user unseen at
    fit); ``history``: ``B × n_items`` CSR of the users' known interactions, summed weights per
    (user, item) (from the fit data, or from the ``interactions`` passed to ``recommend``);
    :attr:`events`: the same as rows ``row, item, timestamp`` sorted by row and time.
    """

    user: np.ndarray
    history: sp.csr_matrix
    ids: pl.Series
    timed_events: pl.DataFrame | None = None

    @cached_property
    def events(self) -> pl.DataFrame:
        """``row, item, timestamp`` (µs) sorted by row, then time. From fit data there is no time:
        one row per (user, item) pair with timestamp 0, in item order."""
        if self.timed_events is not None:
            return self.timed_events
        coo = self.history.tocoo()  # CSR rows in order, columns sorted within a row
        return pl.DataFrame({"row": coo.row.astype(np.int64), "item": coo.col.astype(np.int64),
                             "timestamp": np.zeros(coo.nnz, dtype=np.int64)})


class Recommender(ABC):
    """Base class: ``fit`` → ``recommend`` / ``similar_items``.

    Class attributes a model sets:
        supports_cold_users: can score users it has never seen (e.g. popularity).
        scores_from_history: can score any user from the interactions given to ``recommend``.
        fitted_attributes: what ``fit`` sets; until all exist, ``recommend`` and the others refuse.
    """

    supports_cold_users: ClassVar[bool] = False
    scores_from_history: ClassVar[bool] = False
    fitted_attributes: ClassVar[tuple[str, ...]] = ("items_",)
    device: torch.device = torch.device("cpu")

    @property
    def name(self) -> str:
        return type(self).__name__

    # ------------------------------------------------------------------ fit
    def fit(self, interactions: pl.DataFrame, *args: Any, **kwargs: Any) -> Recommender:
        """Learn from ``interactions`` (``user_id, item_id`` and, if present, ``weight``, ``timestamp``).

        The ids are encoded here; ``args`` and ``kwargs`` go to the model's ``_fit`` as they are
        (e.g. ``valid=`` of the torch models: see each model's ``_fit``)."""
        require_columns(interactions.columns, (U, I), f"interactions passed to {self.name}.fit")
        if interactions.is_empty():
            raise SchemaError(f"{self.name}.fit got an empty interactions table")
        self.users_ = IdEncoder.fit(interactions[U])
        self.items_ = IdEncoder.fit(interactions[I])
        self._fit(self._encode(interactions), *args, **kwargs)
        return self

    def _encode(self, interactions: pl.DataFrame) -> EncodedInteractions:
        frame = pl.DataFrame({
            "user": self.users_.transform(interactions[U]),
            "item": self.items_.transform(interactions[I]),
            "weight": interactions[W].cast(pl.Float32) if W in interactions.columns else pl.repeat(1.0, interactions.height, dtype=pl.Float32, eager=True),
        })
        timestamp = None
        if T in interactions.columns:
            frame = frame.with_columns(interactions[T].dt.epoch("us").alias("timestamp"))
            timestamp = frame["timestamp"].to_numpy()
        user, item, weight = (frame[c].to_numpy() for c in ("user", "item", "weight"))
        n_users, n_items = len(self.users_), len(self.items_)
        matrix = sp.csr_matrix((weight, (user, item)), shape=(n_users, n_items), dtype=np.float32)
        matrix.sum_duplicates()
        self.viewed_ = matrix
        self._padded = None  # rebuilt on demand by _viewed_padded
        return EncodedInteractions(user, item, timestamp, n_users, n_items, matrix)

    @abstractmethod
    def _fit(self, data: EncodedInteractions, *args: Any, **kwargs: Any) -> None:
        """Learn from encoded interactions (and whatever else ``fit`` was given after them)."""

    def _score(self, batch: UserBatch) -> torch.Tensor:
        """Scores ``B × n_items`` (higher is better) on ``self.device``."""
        raise NotImplementedError(f"{self.name} implements neither _score nor _score_sparse")

    def _score_sparse(self, batch: UserBatch) -> sp.csr_matrix | None:
        """For models that score only a few items per user: a ``B × n_items`` CSR matrix whose stored
        entries are the candidates and their scores (items not stored are never recommended).
        None (the default): the model scores every item with :meth:`_score`."""
        return None

    def _score_shared(self) -> np.ndarray | None:
        """For models that give every user the same ranking (e.g. global popularity): one score per item
        (``n_items``, higher is better; ``-inf``: never recommended). Then a user's list is the first
        ``k`` items of that one ranking they have not seen, found without scoring users × items.
        None (the default): the model scores users one by one."""
        return None

    # ------------------------------------------------------------ recommend
    def recommend(self, users: Iterable | pl.Series, k: int = 10, *, filter_viewed: bool = True,
                  on_unsupported_targets: Policy = "raise", interactions: pl.DataFrame | None = None,
                  batch_size: int = 1024) -> pl.DataFrame:
        """Top-``k`` items for each of ``users``.

        Args:
            users: external user ids (duplicates are ignored).
            k: list length (a user with fewer than k unseen items gets fewer).
            filter_viewed: drop items the user already interacted with.
            on_unsupported_targets: what to do with users the model cannot score (unseen at fit,
                and neither ``supports_cold_users`` nor ``scores_from_history`` with their history in
                ``interactions``): ``"raise"`` an error, ``"warn"`` and skip them, or ``"ignore"`` (skip).
            interactions: histories to use instead of the fit data (e.g. train + validation, or the
                history of users unseen at fit); items unseen at fit are ignored.
            batch_size: users scored at once.

        Returns:
            ``user_id, item_id, score, rank`` sorted by user, then rank (1 = best), ties broken by
            ``item_id`` ascending.
        """
        self._check_fitted()
        if on_unsupported_targets not in ("raise", "warn", "ignore"):
            raise ValueError("on_unsupported_targets must be 'raise', 'warn' or 'ignore'")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        targets = pl.Series(U, users if not isinstance(users, pl.Series) else users.to_list(),
                            dtype=self.users_.ids.dtype, strict=False).unique().sort()
        if targets.null_count():
            raise SchemaError("users passed to recommend contain nulls (or ids of the wrong type)")
        user_idx = self.users_.transform(targets, unknown="null")
        supported = user_idx.is_not_null()
        if interactions is not None:
            require_columns(interactions.columns, (U, I), "interactions passed to recommend")
        if self.supports_cold_users:
            supported = pl.repeat(True, targets.len(), eager=True)
        elif self.scores_from_history and interactions is not None:
            supported = supported | targets.is_in(interactions[U].implode())
        unsupported = targets.filter(~supported)
        if unsupported.len():
            message = (f"{self.name} cannot score {unsupported.len()} user(s) unseen at fit, e.g. "
                       f"{unsupported.head(5).to_list()}")
            if on_unsupported_targets == "raise":
                hint = " — pass their history as interactions=" if self.scores_from_history else ""
                raise UnknownUsersError(f"{message}{hint}; or use on_unsupported_targets='warn' or 'ignore' "
                                        "to skip them")
            if on_unsupported_targets == "warn":
                warnings.warn(message + "; they are skipped", UserWarning, stacklevel=2)
        targets, user_idx = targets.filter(supported), user_idx.filter(supported).fill_null(-1).to_numpy()
        batches = (self._batches_from_fit(targets, user_idx, batch_size) if interactions is None
                   else self._batches_from_interactions(targets, user_idx, interactions, batch_size))
        pieces = [self._recommend_batch(batch, k, filter_viewed) for batch in batches]
        if not pieces:
            return self._empty_recos(targets.dtype)
        return pl.concat(pieces)

    def _batches_from_fit(self, targets: pl.Series, user_idx: np.ndarray, batch_size: int) -> Iterator[UserBatch]:
        """Histories are the fit data's rows (an empty row for a user unseen at fit)."""
        padded = self._viewed_padded()
        rows = np.where(user_idx >= 0, user_idx, self.viewed_.shape[0])
        for start in range(0, targets.len(), batch_size):
            stop = min(start + batch_size, targets.len())
            yield UserBatch(user_idx[start:stop], padded[rows[start:stop]], targets.slice(start, stop - start))

    def _viewed_padded(self) -> sp.csr_matrix:
        """``viewed_`` with one empty row appended (the history of users unseen at fit); built once."""
        if getattr(self, "_padded", None) is None or self._padded.shape[0] != self.viewed_.shape[0] + 1:
            empty = sp.csr_matrix((1, self.viewed_.shape[1]), dtype=self.viewed_.dtype)
            self._padded = sp.vstack([self.viewed_, empty], format="csr")
        return self._padded

    def _batches_from_interactions(self, targets: pl.Series, user_idx: np.ndarray, interactions: pl.DataFrame,
                                   batch_size: int) -> Iterator[UserBatch]:
        """Histories are the given interactions (items unseen at fit are dropped), in time order."""
        rows = interactions.filter(pl.col(U).is_in(targets.implode()))
        n = rows.height
        events = pl.DataFrame({
            "row": rows[U].replace_strict(targets, pl.int_range(targets.len(), eager=True), return_dtype=pl.Int64),
            "item": self.items_.transform(rows[I], unknown="null"),
            "timestamp": rows[T].dt.epoch("us") if T in rows.columns else pl.repeat(0, n, dtype=pl.Int64, eager=True),
            "weight": rows[W].cast(pl.Float32) if W in rows.columns else pl.repeat(1.0, n, dtype=pl.Float32, eager=True),
        }).drop_nulls("item").sort("row", "timestamp", "item")
        starts = np.searchsorted(events["row"].to_numpy(), np.arange(0, targets.len() + batch_size, batch_size))
        n_items = len(self.items_)
        for b, start in enumerate(range(0, targets.len(), batch_size)):
            stop = min(start + batch_size, targets.len())
            ev = events.slice(starts[b], starts[b + 1] - starts[b]).with_columns(pl.col("row") - start)
            history = sp.csr_matrix((ev["weight"].to_numpy(), (ev["row"].to_numpy(), ev["item"].to_numpy())),
                                    shape=(stop - start, n_items))
            history.sum_duplicates()
            yield UserBatch(user_idx[start:stop], history, targets.slice(start, stop - start),
                            ev.select("row", "item", "timestamp"))

    def _recommend_batch(self, batch: UserBatch, k: int, filter_viewed: bool) -> pl.DataFrame:
        targets = batch.ids
        shared = self._score_shared()
        if shared is not None:
            return self._top_k_shared(batch, shared, k, filter_viewed)
        sparse = self._score_sparse(batch)
        if sparse is not None:
            return self._top_k_sparse(batch, sparse, k, filter_viewed)
        with torch.no_grad():
            scores = self._score(batch).to(torch.float32)
            if filter_viewed and batch.history.nnz:
                coo = batch.history.tocoo()
                scores[torch.as_tensor(coo.row, device=scores.device), torch.as_tensor(coo.col, device=scores.device)] = -torch.inf
            values, indices = topk_deterministic(scores, k)
        values, indices = values.cpu().numpy(), indices.cpu().numpy()
        keep = np.isfinite(values)
        rows = np.broadcast_to(np.arange(values.shape[0])[:, None], values.shape)
        ranks = np.broadcast_to(np.arange(1, values.shape[1] + 1)[None, :], values.shape)
        return pl.DataFrame({
            U: targets.gather(rows[keep]),
            I: self.items_.inverse(indices[keep]),
            Columns.score: values[keep].astype(np.float64),
            Columns.rank: ranks[keep].astype(np.int64),
        })

    def _top_k_sparse(self, batch: UserBatch, scores: sp.csr_matrix, k: int, filter_viewed: bool) -> pl.DataFrame:
        """Top-k of sparse candidate scores, in numpy: one stable sort by (row, score descending) — within
        a row the CSR columns are ascending, so equal scores stay in item order — then the first
        ``min(k, candidates)`` of each row, gathered directly (``B·k`` work, not one pass per candidate)."""
        scores = scores.tocsr()
        scores.sort_indices()
        n_rows, n_items = scores.shape
        counts = np.diff(scores.indptr)
        row = np.repeat(np.arange(n_rows), counts)
        item, value = scores.indices, scores.data
        keep = np.isfinite(value)
        if filter_viewed and batch.history.nnz:
            seen = batch.history.tocoo()
            keep &= ~np.isin(row * n_items + item, seen.row.astype(np.int64) * n_items + seen.col)
        if not keep.all():
            row, item, value = row[keep], item[keep], value[keep]
            counts = np.bincount(row, minlength=n_rows)
        order = np.lexsort((-value, row))  # rows stay where they were: row[order] == row
        taken = np.minimum(counts, k)                                     # (n_rows,) list lengths
        rows = np.repeat(np.arange(n_rows), taken)                        # (Σ taken,)
        rank = np.arange(len(rows)) - np.repeat(np.cumsum(taken) - taken, taken)   # 0-based within the row
        pick = order[np.repeat(np.cumsum(counts) - counts, taken) + rank]
        return pl.DataFrame({
            U: batch.ids.gather(rows),
            I: self.items_.inverse(item[pick]),
            Columns.score: value[pick].astype(np.float64),
            Columns.rank: rank.astype(np.int64) + 1,
        })

    def _top_k_shared(self, batch: UserBatch, scores: np.ndarray, k: int, filter_viewed: bool) -> pl.DataFrame:
        """The first ``k`` unseen items of one ranking shared by every user, as an anti-join on positions.

        ``order`` ranks the items once (score descending, ties by the lower index, as
        :func:`~seminar_lib.topk.topk_deterministic`). A user with ``s`` seen items has at least ``k`` unseen
        ones among the first ``k + s`` positions, so those ``c = min(k + s, L)`` candidates are laid out
        row after row, the seen ones are struck out by their position (``O(nnz)``), and the first ``k``
        left in each row are kept: ``O(B·k + nnz)`` work instead of ``O(B·n_items)``.
        """
        if np.isnan(scores).any():
            raise ValueError("scores contain NaN; the model produced invalid scores")
        order = np.argsort(-scores, kind="stable")
        order = order[np.isfinite(scores[order])]
        n_rows, length = len(batch.user), len(order)
        seen = batch.history.tocoo() if filter_viewed else sp.coo_matrix(batch.history.shape)
        position = np.full(len(scores), -1, dtype=np.int64)
        position[order] = np.arange(length)
        seen_row, seen_pos = seen.row.astype(np.int64), position[seen.col]
        listed = seen_pos >= 0
        seen_row, seen_pos = seen_row[listed], seen_pos[listed]
        counts = np.minimum(k + np.bincount(seen_row, minlength=n_rows), length)   # (n_rows,) candidates
        offset = np.cumsum(counts) - counts
        struck = np.zeros(int(counts.sum()), dtype=bool)
        inside = seen_pos < counts[seen_row]
        struck[offset[seen_row[inside]] + seen_pos[inside]] = True
        cand_row = np.repeat(np.arange(n_rows), counts)
        cand_pos = np.arange(len(struck)) - offset[cand_row]
        cand_row, cand_pos = cand_row[~struck], cand_pos[~struck]
        left = np.bincount(cand_row, minlength=n_rows)
        rank = np.arange(len(cand_row)) - np.repeat(np.cumsum(left) - left, left)   # 0-based within the row
        take = rank < k
        item = order[cand_pos[take]]
        return pl.DataFrame({
            U: batch.ids.gather(cand_row[take]),
            I: self.items_.inverse(item),
            Columns.score: scores[item].astype(np.float64),
            Columns.rank: rank[take].astype(np.int64) + 1,
        })

    def _empty_recos(self, user_dtype: pl.DataType) -> pl.DataFrame:
        return pl.DataFrame(schema={U: user_dtype, I: self.items_.ids.dtype, Columns.score: pl.Float64,
                                    Columns.rank: pl.Int64})

    # ---------------------------------------------------------- similar items
    def item_embeddings(self) -> torch.Tensor:
        """``n_items × d`` item vectors, in the order of ``self.items_`` (models with embeddings override)."""
        raise NotImplementedError(f"{self.name} has no item embeddings, so it offers no similar_items")

    def similar_items(self, items: Iterable | pl.Series, k: int = 10) -> pl.DataFrame:
        """Item-to-item neighbours by cosine similarity of :meth:`item_embeddings`:
        ``item_id, similar_item_id, score, rank`` (the item itself excluded)."""
        self._check_fitted()
        targets = pl.Series(I, list(items) if not isinstance(items, pl.Series) else items.to_list(),
                            dtype=self.items_.ids.dtype, strict=False).unique().sort()
        idx = torch.tensor(self.items_.transform(targets).to_numpy())
        with torch.no_grad():
            emb = torch.nn.functional.normalize(self.item_embeddings().float(), dim=-1)
            sims = emb[idx.to(emb.device)] @ emb.T
            sims[torch.arange(len(idx)), idx.to(emb.device)] = -torch.inf
            values, indices = topk_deterministic(sims, k)
        values, indices = values.cpu().numpy(), indices.cpu().numpy()
        n, kk = values.shape
        return pl.DataFrame({
            I: targets.gather(np.repeat(np.arange(n), kk)),
            "similar_item_id": self.items_.inverse(indices.ravel()),
            Columns.score: values.ravel().astype(np.float64),
            Columns.rank: np.tile(np.arange(1, kk + 1), n).astype(np.int64),
        })

    def _check_fitted(self) -> None:
        if not all(hasattr(self, attribute) for attribute in self.fitted_attributes):
            raise RuntimeError(f"{self.name} is not fitted; call fit(interactions) first")
