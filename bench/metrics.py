"""Benchmark: every metric @10 on 1,000,000 recommendation rows (100,000 users × 10).

Target (issue 2): under 2 seconds on the course's 2-core machine. Prints our time, the time of a
straightforward per-user Python implementation (tests/oracle.py) on the same data in the same
run, their ratio, and the largest difference between the two sets of values.

    python bench/metrics.py [--users 100000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from oracle import oracle_metrics  # noqa: E402

from seminar_lib.metrics import evaluate  # noqa: E402


def make_data(n_users: int, n_items: int = 10_000, k: int = 10, seed: int = 0) -> dict[str, pl.DataFrame]:
    rng = np.random.default_rng(seed)
    pop = 1.0 / np.arange(1, n_items + 1)
    pop /= pop.sum()

    def lists(n_per_user: int, p=None) -> np.ndarray:
        # distinct items per user: sample with replacement, keep the first n distinct (vectorised)
        draws = rng.choice(n_items, size=(n_users, 3 * n_per_user), p=p)
        frame = pl.DataFrame({"user_id": np.repeat(np.arange(n_users), 3 * n_per_user), "item_id": draws.ravel()})
        frame = frame.unique(maintain_order=True)
        return frame.filter(pl.int_range(pl.len()).over("user_id") < n_per_user)

    recos = lists(k, pop).with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
    ref = lists(k, pop).with_columns(pl.int_range(1, pl.len() + 1).over("user_id").alias("rank"))
    test = lists(5, pop)
    train = lists(20, pop)
    return {"recos": recos, "ref": ref, "test": test, "train": train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = make_data(args.users)
    print(f"recommendations: {data['recos'].height:,} rows, {args.users:,} users; test {data['test'].height:,} rows; "
          f"train {data['train'].height:,} rows; polars threads: {pl.thread_pool_size()}")

    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        table = evaluate(data["recos"], data["test"], train=data["train"], ref_recos=data["ref"], k=10)
        times.append(time.perf_counter() - start)
    ours = min(times)
    rows = {name: data[name].select(cols).rows() for name, cols in
            [("recos", ["user_id", "item_id", "rank"]), ("test", ["user_id", "item_id"]),
             ("train", ["user_id", "item_id"]), ("ref", ["user_id", "item_id", "rank"])]}
    start = time.perf_counter()
    reference = oracle_metrics(rows["recos"], rows["test"], rows["train"], 10, ref_rows=rows["ref"])
    ref_time = time.perf_counter() - start

    got = {m: v for m, v in table.select("metric", "value").iter_rows()}
    diff = max(abs(got[m] - reference[m]) / max(abs(reference[m]), 1e-12) for m in reference)
    print(f"metrics computed: {', '.join(got)}")
    print(f"seminar_lib.metrics.evaluate: {ours:.3f} s (best of {args.repeats}: "
          f"{', '.join(f'{t:.3f}' for t in times)})")
    print(f"per-user Python reference:     {ref_time:.3f} s")
    print(f"speed-up: {ref_time / ours:.1f}x; largest relative difference of values: {diff:.1e}")
    target = 2.0
    print(f"target < {target:.1f} s: {'met' if ours < target else 'NOT met'}")
    if diff > 1e-9:
        raise SystemExit("values differ from the reference")


if __name__ == "__main__":
    main()
