"""Homework 3 — the hidden cases (instructors only): the proposal's log q and the loss (values and gradients,
float64, overflow-prone scores) against the reference; the sampler's distribution on large draws; the registry
entry recomputed on the negatives it drew; and SASRec trained with the submission's loss on ML-100K, scored
here against held-out events that the worker never receives.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch

from seminar_lib.grading.cases import Case, Measured, ProbeResult, allclose, load_module, raises
from seminar_lib.grading.public import assignment_module

public = assignment_module("hw3_sasrec", "public_cases.py")
harness = assignment_module("hw3_sasrec", "harness.py")
reference = load_module(Path(__file__).resolve().parent / "reference" / "solution.py", "_hw3_private_reference")
RTOL = 1e-6
SEEDS = (3, 17, 29)

# The quality bar (README): nDCG@10 over ML-100K's 5-core users of their last 5 events, SASRec trained
# 10 epochs (seed 0) on everything before them. TopPopular: 0.0356 (bootstrap 95 % over users [0.0313, 0.0400]);
# the reference loss: 0.0524 [0.0469, 0.0583] (seed 1: 0.0518); in-batch softmax without logQ: 0.0145.
QUALITY_BAR = 0.045
QUALITY_EPOCHS = 10


def popularity(seed: int, n_items: int = 200, zeros: int = 20) -> np.ndarray:
    """Power-law counts with ``zeros`` items never seen."""
    rng = np.random.default_rng(seed)
    counts = np.floor(1000.0 / (np.arange(n_items) + 1.0) ** 1.1 * rng.uniform(0.5, 1.5, n_items))
    counts[rng.choice(n_items, zeros, replace=False)] = 0.0
    return rng.permutation(counts)


def q_of(pop: np.ndarray, alpha: float) -> np.ndarray:
    return alpha / pop.size + (1 - alpha) * pop / pop.sum()


def loss_inputs(seed: int, scale: float, n: int = 64, k: int = 32) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    pos, neg = rng.normal(size=n) * scale, rng.normal(size=(n, k)) * scale
    collision = rng.random((n, k)) < 0.1
    collision[7] = True  # a row whose every column is its own positive
    log_q_neg = np.log(q_of(popularity(seed, k, zeros=0), 0.4))
    return {"pos": pos, "neg": neg, "collision": collision, "log_q_neg": log_q_neg}


def entry_inputs(seed: int, n_negatives: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    counts = popularity(seed, 50, zeros=5)
    positives = rng.choice(np.flatnonzero(counts), 40)
    with np.errstate(divide="ignore"):
        log_q = np.log(counts / counts.sum())
    return {"hidden": rng.normal(size=(40, 8)), "item_vectors": rng.normal(size=(50, 8)) * 0.5,
            "positives": positives, "log_q": log_q, "n_negatives": n_negatives, "alpha": 0.5, "seed": seed}


def entry_matches(inputs: dict[str, Any]) -> Callable[[ProbeResult, ProbeResult | None], str | None]:
    """The entry's loss and gradients equal the reference formula computed here on the negatives the
    submission's sampler drew from the same seed; the entry asks for log q and draws its own negatives."""

    def check(result: ProbeResult, _: ProbeResult | None) -> str | None:
        if not result.ok:
            return f"raised {result.error}"
        out = result.outputs
        if not out["needs_log_q"] or out["needs_negatives"]:
            return "the entry must set needs_log_q=True and needs_negatives=False (it draws its own negatives)"
        negatives = torch.as_tensor(np.asarray(out["negatives"], dtype=np.int64))
        if negatives.shape != (inputs["n_negatives"],):
            return f"{negatives.numel()} negatives drawn, expected x.n_negatives = {inputs['n_negatives']}"
        h = torch.tensor(inputs["hidden"], requires_grad=True)
        m = torch.tensor(inputs["item_vectors"], requires_grad=True)
        positives = torch.as_tensor(np.asarray(inputs["positives"], dtype=np.int64))
        log_q = reference.mixture_log_q(torch.as_tensor(inputs["log_q"]).exp(), inputs["alpha"])
        loss = reference.mixed_softmax_loss((h * m[positives]).sum(-1), h @ m[negatives].T,
                                            positives[:, None] == negatives[None, :], log_q[negatives])
        loss.backward()
        want = ProbeResult(outputs={"loss": float(loss.detach()), "grad_hidden": h.grad.numpy(),
                                    "grad_items": m.grad.numpy()})
        why = allclose("loss", "grad_hidden", "grad_items", rtol=RTOL, atol=1e-9)(result, want)
        return None if why is None else f"not the loss of the negatives your sampler draws: {why}"

    return check


@lru_cache(maxsize=1)
def quality_split() -> tuple[pl.DataFrame, pl.DataFrame]:
    """ML-100K, 5-core, each user's last 5 events held out (built here, in the grader's process)."""
    from seminar_lib.datasets import load
    from seminar_lib.splits import k_core
    return harness.hold_out_last(k_core(load("ml-100k").interactions, 5))


def quality_inputs() -> dict[str, Any]:
    train, held_out = quality_split()
    return {"train": {"user_id": train["user_id"].to_numpy(), "item_id": train["item_id"].to_numpy(),
                      "timestamp": train["timestamp"].dt.epoch("us").to_numpy()},
            "users": held_out["user_id"].unique().sort().to_numpy(), "alpha": 0.5, "epochs": QUALITY_EPOCHS,
            "seed": 0, "k": 10}


def ndcg_at_10(recos: dict[str, Any], held_out: pl.DataFrame) -> float:
    """The library's nDCG@10, averaged over every held-out user (a user without recommendations scores 0)."""
    from seminar_lib.metrics import ndcg
    table = pl.DataFrame({name: np.asarray(recos[name], dtype=np.int64) for name in ("user_id", "item_id", "rank")})
    return float(ndcg(table, held_out.select("user_id", "item_id"), 10))


def quality_bar(result: ProbeResult, _: ProbeResult | None) -> str | Measured | None:
    if not result.ok:
        return f"raised {result.error}"
    value = ndcg_at_10(result.outputs, quality_split()[1])
    if value >= QUALITY_BAR:
        return Measured(value)
    return Measured(value, f"nDCG@10 = {value:.4f} on the held-out events, below the bar {QUALITY_BAR} "
                           "(TopPopular: 0.0356)")


def lazy(make: Callable[..., dict[str, Any]], *args: Any, **kwargs: Any) -> Callable[[], dict[str, Any]]:
    return lambda: make(*args, **kwargs)


ENTRIES = [entry_inputs(s, n) for s in SEEDS[:2] for n in (16, 64)]
CASES = [
    *[Case("mixture_log_q", f"mixture_log_q[seed {s}, α {a}]", "log_q",
           lazy(lambda s=s, a=a: {"popularity": popularity(s), "alpha": a}), allclose("log_q", rtol=RTOL))
      for s in SEEDS for a in (0.0, 0.1, 0.5, 1.0)],
    *[Case("mixed_softmax_loss", f"mixed_softmax_loss[seed {s}, scores ×{scale:g}]", "loss_value",
           lazy(loss_inputs, s, scale), allclose("loss", "grad_pos", "grad_neg", rtol=RTOL, atol=1e-9))
      for s in SEEDS for scale in (1.0, 30.0, 800.0)],
    *[Case("sampler", f"sample_mixed_negatives[seed {s}, α {a}, 200,000 draws]", "sampler",
           lazy(lambda s=s, a=a: {"popularity": popularity(s), "alpha": a, "k": 200_000, "seed": s}),
           public.distribution_matches(q_of(popularity(s), a)), reference=False)
      for s in SEEDS for a in (0.0, 0.3, 0.7, 1.0)],
    *[Case("registry_entry", f"registry_entry[seed {e['seed']}, {e['n_negatives']} negatives]", "entry_step", e,
           entry_matches(e), reference=False) for e in ENTRIES],
    Case("quality", "SASRec with your loss on ML-100K's held-out last events", "train_and_recommend",
         quality_inputs, quality_bar, reference=False, timeout=420),
    Case("input_validation", "mixture_log_q refuses α = -0.1", "bad_input",
         {"function": "mixture_log_q", "inputs": {"popularity": public.POPULARITY, "alpha": -0.1}},
         raises("ValueError"), reference=False),
    Case("input_validation", "mixture_log_q refuses a popularity that sums to 0", "bad_input",
         {"function": "mixture_log_q", "inputs": {"popularity": [0.0, 0.0, 0.0], "alpha": 0.5}},
         raises("ValueError"), reference=False),
    Case("input_validation", "sample_mixed_negatives refuses negative popularity", "bad_input",
         {"function": "sample_mixed_negatives", "inputs": {"popularity": [1.0, -1.0, 2.0], "alpha": 0.5, "k": 3}},
         raises("ValueError"), reference=False),
]
