"""Homework 3 — the probes: how the grader calls your ``solution.py`` (public; see ``README.md``).

Every probe gets plain data (lists, numpy arrays), calls your functions with torch tensors and returns
plain data. The grader compares the results with the reference solution's, or checks them itself (the
sampler's distribution, the trained model's quality on interactions this process never receives).
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
import polars as pl
import torch

from seminar_lib.models.sequential import SASRec
from seminar_lib.models.sequential.losses import LossInputs, SequentialLoss, register_loss

LOSS_NAME = "hw3_mixed_logq"  # the name the probes register your loss under
HELD_OUT = 5  # the quality case holds out each user's last 5 events


def hold_out_last(interactions: pl.DataFrame, n: int = HELD_OUT) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``(train, held_out)``: each user's last ``n`` events (ordered by timestamp, then item_id) are held out
    from users with more than ``n`` events; the grader trains on ``train`` and scores the top 10 against
    ``held_out``, which the worker never receives."""
    ranked = interactions.sort("user_id", "timestamp", "item_id").with_columns(
        (pl.len().over("user_id") - pl.int_range(pl.len()).over("user_id")).alias("_from_end"),
        (pl.len().over("user_id") > n).alias("_eligible"))
    held = pl.col("_eligible") & (pl.col("_from_end") <= n)
    return ranked.filter(~held).drop("_from_end", "_eligible"), ranked.filter(held).drop("_from_end", "_eligible")


def _f64(values: Any) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def log_q(solution: types.ModuleType, popularity: Any, alpha: float) -> dict[str, Any]:
    out = solution.mixture_log_q(_f64(popularity), alpha)
    return {"log_q": torch.as_tensor(out).detach().double().numpy()}


def loss_value(solution: types.ModuleType, pos: Any, neg: Any, collision: Any, log_q_neg: Any) -> dict[str, Any]:
    """The loss and its gradients with respect to the scores (float64)."""
    pos_t, neg_t = _f64(pos).requires_grad_(True), _f64(neg).requires_grad_(True)
    loss = solution.mixed_softmax_loss(pos_t, neg_t, torch.as_tensor(np.asarray(collision, dtype=bool)), _f64(log_q_neg))
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise TypeError("mixed_softmax_loss must return a scalar tensor")
    loss.backward()
    grad = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (pos_t, neg_t)]
    return {"loss": float(loss.detach()), "grad_pos": grad[0].numpy(), "grad_neg": grad[1].numpy()}


def sampler(solution: types.ModuleType, popularity: Any, alpha: float, k: int, seed: int) -> dict[str, Any]:
    """How often each item was drawn in ``k`` draws, and whether the same generator seed repeats the draw."""
    pop = _f64(popularity)
    draws = [torch.as_tensor(solution.sample_mixed_negatives(pop, alpha, k, torch.Generator().manual_seed(seed)))
             for _ in range(2)]
    first = draws[0]
    if first.shape != (k,) or first.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"sample_mixed_negatives returned shape {tuple(first.shape)} dtype {first.dtype}, expected ({k},) int64")
    if int(first.min()) < 0 or int(first.max()) >= pop.numel():
        raise ValueError("sample_mixed_negatives returned an index outside the catalogue")
    return {"counts": torch.bincount(first.long(), minlength=pop.numel()).numpy(),
            "repeatable": bool(torch.equal(first, draws[1]))}


def entry_step(solution: types.ModuleType, hidden: Any, item_vectors: Any, positives: Any, log_q: Any,
               n_negatives: int, alpha: float, seed: int) -> dict[str, Any]:
    """One call of your registry entry's ``compute`` on given vectors, with the negatives that your sampler
    draws from the same generator seed (the grader recomputes the loss on exactly those negatives)."""
    entry = solution.registry_entry(alpha)
    if not isinstance(entry, SequentialLoss):
        raise TypeError(f"registry_entry returned {type(entry).__name__}, expected a SequentialLoss")
    log_q_t = _f64(log_q)
    negatives = torch.as_tensor(solution.sample_mixed_negatives(log_q_t.exp(), alpha, n_negatives,
                                                                torch.Generator().manual_seed(seed)))
    h, m = _f64(hidden).requires_grad_(True), _f64(item_vectors).requires_grad_(True)
    x = LossInputs(h, torch.as_tensor(np.asarray(positives, dtype=np.int64)), m, log_q=log_q_t,
                   n_negatives=n_negatives, generator=torch.Generator().manual_seed(seed))
    loss = entry.compute(x)
    if not isinstance(loss, torch.Tensor) or loss.dim() != 0:
        raise TypeError("the registry entry's compute must return a scalar tensor")
    loss.backward()
    grads = [t.grad if t.grad is not None else torch.zeros_like(t) for t in (h, m)]
    return {"loss": float(loss.detach()), "negatives": negatives.long().numpy(), "grad_hidden": grads[0].numpy(),
            "grad_items": grads[1].numpy(), "needs_log_q": bool(entry.needs_log_q),
            "needs_negatives": bool(entry.needs_negatives)}


def train_and_recommend(solution: types.ModuleType, train: dict[str, Any], users: Any, alpha: float, epochs: int,
                        seed: int, k: int = 10) -> dict[str, Any]:
    """Register your loss, train the library's SASRec with it on ``train`` (``user_id, item_id, timestamp`` in
    µs), and return the top ``k`` items for ``users`` (the next items after their training history)."""
    torch.set_num_threads(1)
    register_loss(LOSS_NAME, solution.registry_entry(alpha), replace=True)
    frame = pl.DataFrame({"user_id": np.asarray(train["user_id"], dtype=np.int64),
                          "item_id": np.asarray(train["item_id"], dtype=np.int64),
                          "timestamp": np.asarray(train["timestamp"], dtype=np.int64)})
    frame = frame.with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
    model = SASRec(LOSS_NAME, epochs=epochs, seed=seed, device="cpu", log_every=None).fit(frame)
    recos = model.recommend(pl.Series("user_id", np.asarray(users, dtype=np.int64)), k=k)
    return {name: recos[name].to_numpy() for name in ("user_id", "item_id", "rank")}


def bad_input(solution: types.ModuleType, function: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Call ``function`` with inputs it must refuse (the check expects a ``ValueError``)."""
    if function == "mixture_log_q":
        solution.mixture_log_q(_f64(inputs["popularity"]), inputs["alpha"])
    elif function == "sample_mixed_negatives":
        solution.sample_mixed_negatives(_f64(inputs["popularity"]), inputs["alpha"], inputs["k"],
                                        torch.Generator().manual_seed(0))
    else:
        raise KeyError(function)
    return {"returned": True}
