"""Benchmark: EASE's fit on ml-100k (all interactions, λ = 500) against a plain numpy reference.

Target: our fit (``seminar_lib.models.ease``: Gram matrix from the sparse matrix, Cholesky inverse
in torch) at least 2× faster than the reference written below (dense float32 ``X``,
``G = XᵀX``, ``np.linalg.inv``, ``B = −P / diag(P)`` with a zero diagonal), measured in the same
run with the same number of threads, best of ``--repeats``. Both start from the same encoded
CSR matrix; the time of the whole ``EASE.fit`` (with id encoding) is printed too. Then the two
models' top-10 lists (filter viewed, every user) are compared; lists that differ are checked
for near-ties and compared again in float64.

    python bench/ease.py [--threads 1] [--repeats 5] [--regularization 500]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import polars as pl
import scipy.sparse as sp
import torch
from threadpoolctl import threadpool_limits

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
if MIRROR.is_dir():
    os.environ.setdefault("SEMINAR_DATA_DIR", str(MIRROR))  # the ML-100K mirror beside the checkout

from seminar_lib.datasets import load  # noqa: E402
from seminar_lib.models.ease import EASE, ease_weights, gram_matrix  # noqa: E402

K = 10
Result = TypeVar("Result")


def reference_ease(X: sp.csr_matrix, lam: float, dtype: type = np.float32) -> np.ndarray:
    """The plain numpy EASE: dense ``X``, ``G = XᵀX``, ``P = inv(G + λI)``, ``B = −P/diag(P)``, ``diag(B) = 0``."""
    dense = X.toarray().astype(dtype)
    gram = dense.T @ dense
    gram[np.diag_indices_from(gram)] += lam
    P = np.linalg.inv(gram)
    B = P / (-np.diag(P))
    B[np.diag_indices_from(B)] = 0.0
    return B


def ours(X: sp.csr_matrix, lam: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """What ``EASE._fit`` runs: ``ease_weights(gram_matrix(X), λ)``."""
    return ease_weights(gram_matrix(X, dtype=dtype), lam)


def best_times(fns: dict[str, Callable[[], Result]], repeats: int) -> tuple[dict[str, float], dict[str, Result]]:
    """The fastest of ``repeats`` calls of each function (seconds) and each one's last result.

    The functions take turns within every repeat, so on a shared machine a burst of load from
    elsewhere hits them alike instead of one of them.
    """
    times: dict[str, list[float]] = {name: [] for name in fns}
    results: dict[str, Result] = {}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            results[name] = fn()
            times[name].append(time.perf_counter() - start)
    return {name: min(ts) for name, ts in times.items()}, results


def reference_topk(X: sp.csr_matrix, B: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` item indices (``n_users × k``) of ``X·B`` with seen items removed, ties to the lower
    index — the rule of ``Recommender.recommend`` — and the sorted scores. Scores are rounded to
    float32 first, as ``recommend`` does."""
    scores = (X.toarray().astype(B.dtype) @ B).astype(np.float32)
    scores[X.nonzero()] = -np.inf
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


def our_topk(model: EASE, users: pl.Series, k: int) -> np.ndarray:
    """Our top-``k`` lists through the public ``recommend``, as item indices (``n_users × k``, users sorted)."""
    recos = model.recommend(users, k=k)
    codes = model.items_.transform(recos["item_id"]).to_numpy()
    return codes.reshape(len(users), k)


def compare_lists(model: EASE, X: sp.csr_matrix, B_ref: np.ndarray, users: pl.Series) -> tuple[int, int, int]:
    """``(identical lists, users, differing lists explained by a near-tie)``; a near-tie: where the
    lists first differ, the reference's scores of the two items differ by < 1e-5 relative."""
    ref_idx, _ = reference_topk(X, B_ref, K)
    our_idx = our_topk(model, users, K)
    same = (ref_idx == our_idx).all(axis=1)
    scores = (X.toarray().astype(B_ref.dtype) @ B_ref).astype(np.float64)
    near_ties = 0
    for row in np.flatnonzero(~same):  # only the few differing users, for the report
        pos = np.flatnonzero(ref_idx[row] != our_idx[row])[0]
        a, b = scores[row, ref_idx[row, pos]], scores[row, our_idx[row, pos]]
        near_ties += abs(a - b) <= 1e-5 * max(abs(a), abs(b), 1e-12)
    return int(same.sum()), len(users), int(near_ties)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="threads for torch and numpy's BLAS (default 1)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--regularization", type=float, default=500.0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    lam = args.regularization
    with threadpool_limits(limits=args.threads):  # numpy's / scipy's BLAS and OpenMP pools
        interactions = load("ml-100k").interactions
        model = EASE(lam, device="cpu").fit(interactions)
        X = model.viewed_.copy()  # the encoded n_users × n_items CSR matrix, binary like EASE's X
        X.data[:] = 1.0
        print(f"ml-100k: {X.shape[0]} users × {X.shape[1]} items, {X.nnz} interactions; λ = {lam:g}; "
              f"threads = {args.threads}; best of {args.repeats}")

        gram = gram_matrix(X)
        times, results = best_times({
            "ours": lambda: ours(X, lam),
            "reference": lambda: reference_ease(X, lam),
            "fit": lambda: EASE(lam, device="cpu").fit(interactions),
            "gram": lambda: gram_matrix(X),
            "closed form": lambda: ease_weights(gram.clone(), lam),
        }, args.repeats)
        B_ours, B_ref = results["ours"], results["reference"]
        ratio = times["reference"] / times["ours"]
        print(f"{'ours (sparse Gram + Cholesky, torch)':<40}: {times['ours'] * 1e3:8.1f} ms")
        print(f"{'reference (dense numpy, np.linalg.inv)':<40}: {times['reference'] * 1e3:8.1f} ms")
        print(f"{'ratio reference / ours':<40}: {ratio:8.2f}×  (target ≥ 2×: "
              f"{'MET' if ratio >= 2 else 'NOT MET'})")
        print(f"{'our whole EASE.fit (with id encoding)':<40}: {times['fit'] * 1e3:8.1f} ms")
        print(f"  ours, by step: Gram from sparse {times['gram'] * 1e3:.1f} ms, "
              f"Cholesky + inverse + B {times['closed form'] * 1e3:.1f} ms (incl. a copy of G)")
        print(f"max |B_ours − B_ref| = {np.abs(B_ours.numpy() - B_ref).max():.2e} "
              f"(max |B| = {np.abs(B_ref).max():.2e})")

        users = model.users_.ids
        same, n, ties = compare_lists(model, X, B_ref, users)
        print(f"{f'top-{K} lists identical (float32)':<40}: {same}/{n} = {same / n:.4f}"
              + (f"; {n - same} differ, {ties} of them at a near-tie (relative score gap < 1e-5)" if same < n else ""))
        if same < n:
            model64 = EASE(lam, dtype=torch.float64, device="cpu").fit(interactions)
            same64, n, ties64 = compare_lists(model64, X, reference_ease(X, lam, np.float64), users)
            print(f"{f'top-{K} lists identical (float64)':<40}: {same64}/{n} = {same64 / n:.4f}"
                  + (f"; {n - same64} differ, {ties64} at a near-tie" if same64 < n else ""))


if __name__ == "__main__":
    main()
