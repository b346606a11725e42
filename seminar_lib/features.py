r"""User and item features as model inputs, looked up by id (notebook 04, "Features").

A feature table (``users`` or ``items`` of a :class:`~seminar_lib.datasets.base.RecDataset`) holds
one row per id. A :class:`Feature` says how one of its columns becomes *tokens*:

* :func:`category` — each distinct value is a token (``gender=F``);
* :func:`buckets` — a number falls into an interval of given edges (``age=[25, 35)``);
* :func:`binned` — a number is floored to a multiple of a width (``decade=1990``);
* :func:`multi` — a list column (or a string split by a separator) gives one token per element
  (``genres=Comedy``, ``genres=Drama``): a multi-hot feature.

:class:`FeatureEncoder` learns the vocabulary of every feature on the entities seen at fit and
then encodes any list of ids, **aligned to that list** (row ``r`` of the result belongs to
``ids[r]``): rows are found by a join on the id column, never by row position. (The original seminar's notebook
took "row ``uid``" of a feature table whose rows were in file order, so on an unsorted file users
got other users' features.) Each feature has its own *unknown* token, code 0 of the feature: it
stands for a value not seen at fit, a null, an empty list, or an id missing from the table.

The encoding comes in two equivalent forms (:class:`EncodedFeatures`), so a notebook can show that
"an embedding is a linear layer applied to a one-hot vector, computed without the zeros":

* ``dense()`` — the one-hot / multi-hot matrix ``X`` (``n × size``) whose column ``c`` is token ``c``;
* ``index``, ``weight`` — per row, the codes of its tokens and their values in ``X``
  (``n × L``, padded with ``pad_index`` and weight 0), the input of
  ``torch.nn.EmbeddingBag(size + 1, d, mode="sum", padding_idx=pad_index)`` with
  ``per_sample_weights``: ``EmbeddingBag(index, weight) = X · E[:size]`` for its table ``E``.

Column choices for the course's datasets are presets (:func:`get_preset`), kept with each dataset's
registry entry; the declarations (:class:`Feature`, :class:`FeaturePreset`) are in
:mod:`seminar_lib.feature_specs` and importable from here.

>>> users = pl.DataFrame({"user_id": [7, 3], "gender": ["M", "F"], "age": [23, 41]})
>>> enc = FeatureEncoder([category("gender"), buckets("age", (18, 25, 35, 45))], key="user_id").fit(users)
>>> enc.names
['gender=<unknown>', 'gender=F', 'gender=M', 'age=<unknown>', 'age=[18, 25)', 'age=[35, 45)']
>>> x = enc.encode(pl.Series([3, 7, 99]))  # by id, in this order; 99 is not in the table
>>> x.index.tolist()
[[1, 5], [2, 4], [0, 3]]
>>> x.dense().tolist()[0]
[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import polars as pl
import torch

from seminar_lib.errors import SchemaError, require_columns
from seminar_lib.datasets.registry import REGISTRY
from seminar_lib.feature_specs import Feature, FeaturePreset, binned, buckets, category, multi

__all__ = ["UNKNOWN", "EncodedFeatures", "Feature", "FeatureEncoder", "FeaturePreset", "binned", "buckets", "category",
           "embedding_bag", "get_preset", "multi", "preset_names", "token_bags", "unknown_codes"]

UNKNOWN = "<unknown>"


# ------------------------------------------------------------------------------------------- presets
def get_preset(preset: str | FeaturePreset) -> FeaturePreset:
    """A preset by dataset name — the ``features`` of its registry entry
    (:class:`~seminar_lib.datasets.registry.DatasetSpec`; :func:`preset_names` lists them) — or the given
    :class:`FeaturePreset` itself."""
    if isinstance(preset, FeaturePreset):
        return preset
    spec = REGISTRY.get(preset)
    if spec is None or spec.features is None:
        raise KeyError(f"unknown feature preset {preset!r}; known: {preset_names()} "
                       "(or pass a FeaturePreset(users=(...), items=(...)))")
    return spec.features


def preset_names() -> list[str]:
    """The datasets whose registry entry has a feature preset (:func:`get_preset` takes these names)."""
    return sorted(name for name, spec in REGISTRY.items() if spec.features is not None)


# ----------------------------------------------------------------------------------------- encodings
@dataclass(frozen=True)
class EncodedFeatures:
    """Features of ``n`` entities (row ``r`` = the ``r``-th requested id), in index form.

    Attributes:
        index: ``n × L`` int64 token codes in ``0..size−1``; unused places hold ``pad_index`` (= ``size``).
        weight: ``n × L`` float32 values of the tokens in the one-hot / multi-hot matrix (1 each;
            ``1/len`` per element of a list feature encoded with ``lists="mean"``), 0 at padding.
        names: the ``size`` token names, ``feature=value`` (``feature=<unknown>`` at each feature's code 0).
        missing: ``n`` bool, the id was absent from the feature table (all its features unknown).
    """

    index: torch.Tensor
    weight: torch.Tensor
    names: tuple[str, ...]
    missing: torch.Tensor

    @property
    def size(self) -> int:
        """Number of distinct tokens (columns of :meth:`dense`)."""
        return len(self.names)

    @property
    def pad_index(self) -> int:
        """Code of the padding places (one past the last token: ``EmbeddingBag(size + 1, …, padding_idx=size)``)."""
        return len(self.names)

    def __len__(self) -> int:
        return self.index.shape[0]

    def dense(self) -> torch.Tensor:
        """The one-hot / multi-hot matrix ``X`` (``n × size``, float32): ``X[r, index[r, j]] += weight[r, j]``."""
        x = torch.zeros(self.index.shape[0], self.size + 1, dtype=torch.float32, device=self.index.device)
        x.scatter_add_(1, self.index, self.weight)
        return x[:, : self.size]

    def to(self, device: str | torch.device) -> EncodedFeatures:
        return replace(self, index=self.index.to(device), weight=self.weight.to(device),
                       missing=self.missing.to(device))

    def __getitem__(self, rows: torch.Tensor | slice) -> EncodedFeatures:
        """The features of a subset of rows (e.g. a batch)."""
        return replace(self, index=self.index[rows], weight=self.weight[rows], missing=self.missing[rows])


@dataclass
class FeatureEncoder:
    """Encodes the ``features`` of a table keyed by ``key`` into tokens (see the module docstring).

    Args:
        features: the columns to use and how (:func:`category`, :func:`buckets`, :func:`binned`, :func:`multi`).
        key: the id column (``user_id`` / ``item_id``), unique in the table.
        lists: value of each element of a list feature in the multi-hot matrix: ``"binary"`` (1, the
            usual multi-hot) or ``"mean"`` (``1/len``, so a list weighs as much as one category).

    ``fit(table, ids=None)`` keeps the table and learns each feature's vocabulary from the rows of
    ``ids`` (default: every row); values outside the vocabulary are unknown later.
    ``encode(ids)`` aligns the features to ``ids`` by a join on ``key``.
    """

    features: Sequence[Feature]
    key: str
    lists: Literal["binary", "mean"] = "binary"
    vocab_: list[pl.Series] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.features = tuple(self.features)
        if not self.features:
            raise ValueError("FeatureEncoder needs at least one feature")
        if self.lists not in ("binary", "mean"):
            raise ValueError(f"lists must be 'binary' or 'mean', got {self.lists!r}")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be distinct, got {names}")

    def fit(self, table: pl.DataFrame, ids: pl.Series | Sequence | None = None) -> FeatureEncoder:
        """Keep ``table`` and learn the vocabularies (sorted distinct values) from the rows of ``ids``."""
        what = f"feature table keyed by {self.key!r}"
        require_columns(table.columns, [self.key, *dict.fromkeys(f.column for f in self.features)], what)
        if table[self.key].null_count() or table[self.key].n_unique() != table.height:
            raise SchemaError(f"{what}: {self.key} must be unique and non-null, one row per id")
        self.table_ = table.select(self.key, *dict.fromkeys(f.column for f in self.features))
        rows = self.table_ if ids is None else self._aligned(ids).filter(pl.col("__found"))
        self.vocab_ = []
        for feature in self.features:
            values = feature.values(rows)
            if isinstance(values.dtype, pl.List):
                values = values.explode()
            self.vocab_.append(feature.sort_vocabulary(values))
        offsets = np.cumsum([0] + [len(v) + 1 for v in self.vocab_])
        self.offsets_ = offsets[:-1]
        self.names_ = tuple(f"{feature.name}={value}" for feature, vocab in zip(self.features, self.vocab_)
                            for value in [UNKNOWN, *vocab.to_list()])
        return self

    @property
    def names(self) -> list[str]:
        """Token names ``feature=value``, in code order (a feature's ``<unknown>`` first)."""
        self._check_fitted()
        return list(self.names_)

    @property
    def size(self) -> int:
        """Number of tokens over all features."""
        self._check_fitted()
        return len(self.names_)

    def _check_fitted(self) -> None:
        if not hasattr(self, "table_"):
            raise RuntimeError("FeatureEncoder is not fitted; call fit(table) first")

    def _aligned(self, ids: pl.Series | Sequence) -> pl.DataFrame:
        """The table's rows for ``ids``, in the order of ``ids`` (nulls for ids not in the table),
        plus ``__found``."""
        dtype = self.table_[self.key].dtype
        try:
            s = pl.Series(self.key, ids if not isinstance(ids, pl.Series) else ids.to_list(), dtype=dtype, strict=True)
        except (TypeError, pl.exceptions.PolarsError) as exc:
            raise SchemaError(f"ids to encode must be of the table's {self.key} type {dtype}: {exc}") from None
        found = self.table_.with_columns(pl.lit(True).alias("__found"))
        out = pl.DataFrame({self.key: s}).join(found, on=self.key, how="left", maintain_order="left")
        return out.with_columns(pl.col("__found").fill_null(False))

    def encode(self, ids: pl.Series | Sequence, device: str | torch.device = "cpu") -> EncodedFeatures:
        """Features of ``ids`` (row ``r`` ↔ ``ids[r]``): vectorised, by a join on ``key``."""
        self._check_fitted()
        aligned = self._aligned(ids)
        n = aligned.height
        rows, codes, weights = [], [], []
        for f, (feature, vocab) in enumerate(zip(self.features, self.vocab_)):
            values = feature.values(aligned)
            new = pl.Series(np.arange(1, len(vocab) + 1, dtype=np.int64))
            lookup = dict(old=vocab, new=new, default=0, return_dtype=pl.Int64)
            if isinstance(values.dtype, pl.List):
                tokens = pl.DataFrame({"row": np.arange(n), "value": values}).explode("value").drop_nulls("value")
                tokens = (tokens.select("row", pl.col("value").replace_strict(**lookup).alias("code"))
                          .unique(maintain_order=True))  # a value listed twice counts once
                row, code = tokens["row"].to_numpy(), tokens["code"].to_numpy()
                count = np.bincount(row, minlength=n)
                empty = np.flatnonzero(count == 0)  # null or empty list: the unknown token
                row, code = np.concatenate([row, empty]), np.concatenate([code, np.zeros(len(empty), np.int64)])
                w = np.ones(len(row), np.float32) if self.lists == "binary" else \
                    (1.0 / np.maximum(count, 1))[row].astype(np.float32)
            else:
                row, code = np.arange(n), values.replace_strict(**lookup).to_numpy()
                w = np.ones(n, np.float32)
            rows.append(row)
            codes.append(code + self.offsets_[f])
            weights.append(w)
        row, code, w = np.concatenate(rows), np.concatenate(codes), np.concatenate(weights)
        order = np.lexsort((code, row))  # by row, then code: a fixed layout
        row, code, w = row[order], code[order], w[order]
        per_row = np.bincount(row, minlength=n)
        width = int(per_row.max()) if n else 0
        position = np.arange(len(row)) - np.repeat(np.cumsum(per_row) - per_row, per_row)
        index = np.full((n, width), self.size, dtype=np.int64)
        weight = np.zeros((n, width), dtype=np.float32)
        index[row, position], weight[row, position] = code, w
        missing = ~aligned["__found"].to_numpy()
        return EncodedFeatures(torch.from_numpy(index).to(device), torch.from_numpy(weight).to(device),
                               self.names_, torch.from_numpy(missing).to(device))

    def frame(self, ids: pl.Series | Sequence) -> pl.DataFrame:
        """The one-hot / multi-hot matrix of ``ids`` as a table: ``key`` + one column per token
        (what ``pandas.get_dummies`` gave in the original seminar, but aligned by id)."""
        x = self.encode(ids).dense().numpy()
        ids = pl.Series(self.key, ids if not isinstance(ids, pl.Series) else ids.to_list(),
                        dtype=self.table_[self.key].dtype)
        return pl.DataFrame({self.key: ids}).hstack(pl.DataFrame(x, schema=self.names_, orient="row"))


def embedding_bag(size: int, dim: int, *, generator: torch.Generator | None = None, std: float | None = None,
                  unknown_codes: Sequence[int] = ()) -> torch.nn.EmbeddingBag:
    r"""``EmbeddingBag(size + 1, dim, mode="sum", padding_idx=size)`` for an :class:`EncodedFeatures`
    of ``size`` tokens, initialised :math:`\mathcal N(0, \text{std}^2)` (default ``1/\sqrt{dim}``) from
    ``generator``, with the rows of ``unknown_codes`` (and the padding row) at 0 — an unknown value
    adds nothing until training gives it a vector.

    ``bag(x.index, per_sample_weights=x.weight)`` equals ``x.dense() @ bag.weight[:size]``.
    """
    bag = torch.nn.EmbeddingBag(size + 1, dim, mode="sum", padding_idx=size)
    with torch.no_grad():
        std = 1.0 / math.sqrt(dim) if std is None else std
        bag.weight.copy_(std * torch.randn(size + 1, dim, generator=generator))
        bag.weight[list(unknown_codes) + [size]] = 0.0
    return bag


def token_bags(encoder: FeatureEncoder, ids: pl.Series | Sequence) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """The *known* tokens of each of ``ids`` in CSR form, without ``<unknown>``: ``(offsets, values, names)``.

    Id ``r`` has the tokens ``values[offsets[r]:offsets[r + 1]]`` (ascending); codes ``0..len(names) − 1``
    number the fitted vocabulary's tokens in the sorted order of their names ``feature=value``, and an id
    with no known value (or not in the table) has no token. It is the input of
    ``EmbeddingBag(len(names), d, mode="mean")`` with offsets — the sequential models' item features.
    """
    x = encoder.encode(ids)
    unknown = set(unknown_codes(encoder))
    known = [c for c in range(x.size) if c not in unknown]
    names = sorted(x.names[c] for c in known)
    position = {name: j for j, name in enumerate(names)}
    renumber = np.full(x.size + 1, -1, dtype=np.int64)  # unknown tokens and the padding code: dropped
    renumber[known] = [position[x.names[c]] for c in known]
    codes = renumber[x.index.numpy()]
    row, place = np.nonzero(codes >= 0)
    value = codes[row, place]
    order = np.lexsort((value, row))
    counts = np.bincount(row, minlength=len(x))
    offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)]))
    return offsets, torch.from_numpy(value[order]), names


def unknown_codes(encoder: FeatureEncoder) -> list[int]:
    """Codes of the ``<unknown>`` token of every feature of a fitted encoder."""
    encoder._check_fitted()
    return [int(o) for o in encoder.offsets_]
