"""Homework 1 — the probes: how the grader calls your ``solution.py`` (public; see ``README.md``).

Every probe gets plain data (lists, numpy arrays), builds the polars tables and scipy matrices your
functions take, calls them and returns plain data. The grader compares what your solution returns with
what the reference solution returns on the same inputs, in its own process.

Tables travel as ``{"user_id": [...], "item_id": [...], "rank": [...]}``; sparse matrices as
``{"rows": [...], "cols": [...], "shape": [n, m]}`` with an optional ``"values"`` (default 1.0; a pair
listed twice is summed, as ``scipy.sparse`` does).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import scipy.sparse as sp


def table(columns: Mapping[str, Any]) -> pl.DataFrame:
    """A polars table from ``{column: values}`` (integer columns as Int64, ratings as Float64)."""
    return pl.DataFrame({name: pl.Series(name, np.asarray(values),
                                         dtype=pl.Float64 if name == "rating" else pl.Int64)
                         for name, values in columns.items()})


def matrix(spec: Mapping[str, Any]) -> sp.csr_matrix:
    """A ``csr_matrix`` from ``{"rows", "cols", "shape"[, "values"]}``."""
    rows, cols = np.asarray(spec["rows"], dtype=np.int64), np.asarray(spec["cols"], dtype=np.int64)
    values = np.asarray(spec["values"], dtype=np.float64) if "values" in spec else np.ones(len(rows))
    return sp.csr_matrix((values, (rows, cols)), shape=tuple(int(n) for n in spec["shape"]))


def _number(value: Any, what: str) -> float:
    if isinstance(value, (bool, str)) or np.ndim(value) != 0:
        raise TypeError(f"{what} returned {type(value).__name__}, expected a float")
    return float(value)


def graded_ndcg(solution: types.ModuleType, recos: Mapping, test: Mapping, k: int) -> dict[str, Any]:
    return {"value": _number(solution.graded_ndcg_at_k(table(recos), table(test), k), "graded_ndcg_at_k")}


def diversity(solution: types.ModuleType, recos: Mapping, item_vectors: Any, k: int) -> dict[str, Any]:
    vectors = np.asarray(item_vectors, dtype=np.float64)
    return {"value": _number(solution.intra_list_diversity(table(recos), vectors, k), "intra_list_diversity")}


def auc(solution: types.ModuleType, scores: Any, train: Mapping, test: Mapping) -> dict[str, Any]:
    value = solution.mean_auc(np.asarray(scores, dtype=np.float64), matrix(train), matrix(test))
    return {"value": _number(value, "mean_auc")}


def _similarity(solution: types.ModuleType, X: Mapping, n_neighbours: int, shrinkage: float) -> sp.csr_matrix:
    S = solution.itemknn_similarity(matrix(X), n_neighbours, shrinkage)
    if not sp.issparse(S):
        raise TypeError(f"itemknn_similarity returned {type(S).__name__}, expected a scipy.sparse matrix")
    n_items = int(X["shape"][1])
    if S.shape != (n_items, n_items):
        raise ValueError(f"itemknn_similarity returned shape {S.shape}, expected {(n_items, n_items)}")
    S = sp.csr_matrix(S, dtype=np.float64)
    S.sum_duplicates()
    return S


def similarity(solution: types.ModuleType, X: Mapping, n_neighbours: int, shrinkage: float) -> dict[str, Any]:
    """The pruned matrix (dense) and the unpruned one (``n_neighbours`` = the number of items), so a check
    can compare values and which neighbours were kept without being fooled by exact ties."""
    pruned = _similarity(solution, X, n_neighbours, shrinkage)
    full = _similarity(solution, X, max(int(X["shape"][1]), 1), shrinkage)
    return {"dense": pruned.toarray(), "full": full.toarray()}


def similarity_rows(solution: types.ModuleType, X: Mapping, n_neighbours: int, shrinkage: float) -> dict[str, Any]:
    """A summary of the pruned matrix per row (for catalogues too big to return densely)."""
    S = _similarity(solution, X, n_neighbours, shrinkage)
    top = np.sort(S.toarray(), axis=1)[:, ::-1][:, : max(int(n_neighbours), 1)]
    return {"row_nnz": np.diff(S.indptr), "row_top": top, "diagonal": S.diagonal()}


def recommend(solution: types.ModuleType, S: Mapping, X: Mapping, k: int) -> dict[str, Any]:
    top = np.asarray(solution.itemknn_recommend(matrix(S), matrix(X), k))
    if top.dtype.kind not in "iu":
        raise TypeError(f"itemknn_recommend returned dtype {top.dtype}, expected integers")
    return {"top": top.astype(np.int64)}


def bad_input(solution: types.ModuleType, function: str, inputs: Mapping) -> dict[str, Any]:
    """Call ``function`` with inputs it must refuse (the check expects a ``ValueError``)."""
    probes = {"graded_ndcg_at_k": graded_ndcg, "intra_list_diversity": diversity, "mean_auc": auc,
              "itemknn_similarity": similarity, "itemknn_recommend": recommend}
    probes[function](solution, **inputs)
    return {"returned": True}
