"""Homework 2 — the probes: how the grader calls your ``solution.py`` (public; see ``README.md``).

Every probe gets plain data (lists, numpy arrays), calls your code and returns plain data. The grader
compares the results with the reference solution's on the same inputs, or checks them itself in its own
process: the ANN index's recall and cost from the partition and the probed cells it returns, a model's
quality from its recommendations against interactions this process never receives.

Interactions travel as ``{"user_id": [...], "item_id": [...], "timestamp": [...] (µs)}``; feature tables
as ``{column: [values]}`` (strings, numbers, or lists of strings for list columns).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Any

import numpy as np
import polars as pl
import torch
from torch import nn

from seminar_lib.models import DSSM


def _f64(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def interactions(spec: Mapping[str, Any]) -> pl.DataFrame:
    frame = pl.DataFrame({"user_id": np.asarray(spec["user_id"], dtype=np.int64),
                          "item_id": np.asarray(spec["item_id"], dtype=np.int64)})
    if "timestamp" in spec:
        frame = frame.with_columns(pl.Series("timestamp", np.asarray(spec["timestamp"], dtype=np.int64))
                                   .cast(pl.Datetime("us", "UTC")))
    return frame


def feature_table(spec: Mapping[str, Any] | None) -> pl.DataFrame | None:
    return None if spec is None else pl.DataFrame({name: list(values) if isinstance(values, list) else values
                                                   for name, values in spec.items()})


def recommendations(recos: pl.DataFrame) -> dict[str, Any]:
    return {name: recos[name].to_numpy().astype(np.int64) for name in ("user_id", "item_id", "rank")}


# ------------------------------------------------------------------------------------------ 1. the loss
def loss_value(solution: types.ModuleType, pos: Any, neg: Any, margin: float, scale: float) -> dict[str, Any]:
    """Your ``pairwise_loss`` and its gradients with respect to ``pos`` and ``neg`` (float64)."""
    pos_t, neg_t = _f64(pos).requires_grad_(True), _f64(neg).requires_grad_(True)
    loss = solution.pairwise_loss(pos_t, neg_t, margin=margin, scale=scale)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise TypeError("pairwise_loss must return a scalar tensor")
    loss.backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (pos_t, neg_t)]
    return {"loss": float(loss.detach()), "grad_pos": grads[0].numpy(), "grad_neg": grads[1].numpy()}


# ------------------------------------------------------------------------------- 2. the feature embedding
def feature_forward(solution: types.ModuleType, size: int, dim: int, table: Any, index: Any, weight: Any,
                    grad_out: Any) -> dict[str, Any]:
    """``FeatureEmbedding(size, dim)`` with its one parameter set to ``table``: the output on ``index`` /
    ``weight`` and the gradient of ``Σ output · grad_out`` with respect to the table."""
    module = solution.FeatureEmbedding(size, dim)
    if not isinstance(module, nn.Module):
        raise TypeError("FeatureEmbedding must be a torch.nn.Module")
    params = list(module.parameters())
    if len(params) != 1 or tuple(params[0].shape) != (size + 1, dim):
        raise ValueError(f"FeatureEmbedding must hold exactly one parameter of shape ({size + 1}, {dim}), "
                         f"got {[tuple(p.shape) for p in params]}")
    module = module.double()
    with torch.no_grad():
        params[0].copy_(_f64(table))
    out = module(torch.as_tensor(np.asarray(index, dtype=np.int64)), _f64(weight))
    (out * _f64(grad_out)).sum().backward()
    grad = params[0].grad if params[0].grad is not None else torch.zeros_like(params[0])
    return {"out": out.detach().numpy(), "grad_table": grad.numpy()}


# ------------------------------------------------------------------------------------------- 3. the tower
def tower_forward(solution: types.ModuleType, in_dim: int, out_dim: int, hidden: int, dropout: float, x: Any,
                  weights: Mapping[str, Any]) -> dict[str, Any]:
    """``Tower(in_dim, out_dim, hidden, dropout)`` with the grader's weights loaded into its two ``Linear`` layers
    and its ``LayerNorm`` (in the order they were created): the output in eval mode, its parameter count, and
    how it behaves in train mode and under backpropagation."""
    torch.manual_seed(0)
    tower = solution.Tower(in_dim, out_dim, hidden=hidden, dropout=dropout)
    if not isinstance(tower, nn.Module):
        raise TypeError("Tower must be a torch.nn.Module")
    linears = [m for m in tower.modules() if isinstance(m, nn.Linear)]
    norms = [m for m in tower.modules() if isinstance(m, nn.LayerNorm)]
    dropouts = [m for m in tower.modules() if isinstance(m, nn.Dropout)]
    if len(linears) != 2 or len(norms) != 1 or len(dropouts) != 1:
        raise ValueError(f"Tower must hold 2 Linear, 1 LayerNorm and 1 Dropout modules, got {len(linears)}, "
                         f"{len(norms)} and {len(dropouts)}")
    n_params = int(sum(p.numel() for p in tower.parameters()))
    tower = tower.double()
    with torch.no_grad():
        for module, prefix in ((linears[0], "linear1"), (norms[0], "norm"), (linears[1], "linear2")):
            module.weight.copy_(_f64(weights[f"{prefix}_weight"]))
            module.bias.copy_(_f64(weights[f"{prefix}_bias"]))
    inputs = _f64(x)
    tower.eval()
    with torch.no_grad():
        out, again = tower(inputs), tower(inputs)
    tower.train()
    torch.manual_seed(1)
    trained = tower(inputs)
    trained.pow(2).sum().backward()
    without_grad = [name for name, p in tower.named_parameters() if p.grad is None or not bool(p.grad.abs().sum() > 0)]
    return {"out": out.numpy(), "n_params": n_params, "eval_repeatable": bool(torch.equal(out, again)),
            "train_differs": bool(not torch.allclose(trained.detach(), out)), "without_gradient": len(without_grad),
            "out_shape": list(out.shape)}


# --------------------------------------------------------------------------------------------- 4. the ANN
def ann_search(solution: types.ModuleType, vectors: Any, ids: Any, queries: Any, k: int) -> dict[str, Any]:
    """Build ``AnnIndex(vectors, ids)``, search ``queries``; return the results, the partition (``cell_of``)
    and the cells probed per query (``probed``), from which the grader recomputes everything it checks."""
    index = solution.AnnIndex(np.asarray(vectors, dtype=np.float32), np.asarray(ids, dtype=np.int64))
    scores, found = index.search(np.asarray(queries, dtype=np.float32), k)
    cell_of = np.asarray(index.cell_of, dtype=np.int64)
    probed = np.asarray(index.probed, dtype=np.int64)
    return {"scores": np.asarray(scores, dtype=np.float64), "ids": np.asarray(found, dtype=np.int64),
            "cell_of": cell_of, "probed": probed}


# ----------------------------------------------------------------------------------- 5. training and ranking
def plain_tower(in_dim: int, out_dim: int) -> nn.Module:
    """The towers of a DSSM that tests another of your parts: ``Linear(in, 128) → ReLU → Linear(128, out)`` (the
    library's ``Tower`` is not available in the worker, and your ``Tower`` is its own item)."""
    return nn.Sequential(nn.Linear(in_dim, 128), nn.ReLU(), nn.Linear(128, out_dim))


def train_with_part(solution: types.ModuleType, part: str, train: Mapping[str, Any], users: Any,
                    user_features: Mapping[str, Any], item_features: Mapping[str, Any], preset: str, epochs: int,
                    seed: int, k: int = 10) -> dict[str, Any]:
    """The library's DSSM with one of your parts (``part``: ``"loss"``, ``"features"`` or ``"tower"``; the other
    parts are the library's defaults, the towers :func:`plain_tower`), fitted on ``train``; the top ``k`` for
    ``users``."""
    torch.set_num_threads(1)
    hooks = {"loss": {"loss": solution.pairwise_loss, "temperature": 1.0, "tower": plain_tower},
             "features": {"features": solution.FeatureEmbedding, "tower": plain_tower},
             "tower": {"tower": lambda i, o: solution.Tower(i, o)}}[part]
    model = DSSM(**hooks, user_features=feature_table(user_features), item_features=feature_table(item_features),
                 preset=preset, epochs=epochs, seed=seed, device="cpu", log_every=None)
    model.fit(interactions(train))
    return recommendations(model.recommend(pl.Series("user_id", np.asarray(users, dtype=np.int64)), k=k))


def leaderboard(solution: types.ModuleType, train: Mapping[str, Any], users: Any, user_features: Mapping[str, Any],
                item_features: Mapping[str, Any], k: int = 10) -> dict[str, Any]:
    """``make_model(users, items)`` fitted on the training period; the top ``k`` for the held-out period's warm
    users (whose held-out interactions stay with the grader)."""
    torch.set_num_threads(1)
    model = solution.make_model(feature_table(user_features), feature_table(item_features))
    model.fit(interactions(train))
    return recommendations(model.recommend(pl.Series("user_id", np.asarray(users, dtype=np.int64)), k=k))
