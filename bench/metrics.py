"""Benchmark: every metric @10 on 1,000,000 recommendation rows (100,000 users × 10).

Targets: ≥ 5× RecTools' ``calc_metrics`` on the same rows in the same run (issue 14), with the same
values as RecTools and as a straightforward per-user Python implementation (tests/oracle.py).
RecTools runs in its own environment (it must not enter the project's: its ``pm-implicit`` replaces
``implicit``) through ``bench/rectools_metrics.py``:

    python3 -m venv /tmp/rectools-venv && /tmp/rectools-venv/bin/pip install rectools==0.19.0
    python bench/metrics.py --rectools-python /tmp/rectools-venv/bin/python [--users 100000] [--repeats 3]

Without ``--rectools-python`` only the oracle comparison runs. ``--output FILE`` also writes the report.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
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


def rectools_timing(python: str, data: dict[str, pl.DataFrame], repeats: int) -> dict:
    """Run bench/rectools_metrics.py with ``python`` (a RecTools environment) on the same rows."""
    with tempfile.TemporaryDirectory() as tmp:
        rows = Path(tmp) / "rows.npz"
        arrays = {f"{name}_{col}": frame[col].to_numpy() for name, frame in data.items() for col in frame.columns}
        np.savez(rows, **arrays)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
        out = subprocess.run([python, str(ROOT / "bench" / "rectools_metrics.py"), str(rows), "--repeats", str(repeats)],
                             capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rectools-python", help="python of an environment with rectools (see the docstring)")
    parser.add_argument("--output", type=Path, help="also write the report to this file")
    args = parser.parse_args()
    data = make_data(args.users)
    lines = [f"recommendations: {data['recos'].height:,} rows, {args.users:,} users; test {data['test'].height:,} rows; "
             f"train {data['train'].height:,} rows; polars threads: {pl.thread_pool_size()}"]

    def run_ours() -> tuple[float, list[float], pl.DataFrame]:
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            table = evaluate(data["recos"], data["test"], train=data["train"], ref_recos=data["ref"], k=10)
            times.append(time.perf_counter() - start)
        return min(times), times, table

    ours, times, table = run_ours()
    got = {f"{m}@{k}": v for m, k, v in table.select("metric", "k", "value").iter_rows()}
    failures = []
    if args.rectools_python:
        rt = rectools_timing(args.rectools_python, data, args.repeats)
        again, times_again, _ = run_ours()  # ours before and after RecTools: the load of a shared machine shows
        ours = min(ours, again)
        theirs = min(rt["seconds"])
        diff_rt = max(abs(got[m] - v) / max(abs(v), 1e-12) for m, v in rt["values"].items())
        lines += [f"metrics computed: {', '.join(got)} (RecTools: {len(rt['values'])}, it has no plain DCG)",
                  f"seminar_lib.metrics.evaluate: {ours:.3f} s (best of {2 * args.repeats}: "
                  f"{', '.join(f'{t:.3f}' for t in times + times_again)})",
                  f"RecTools {rt['rectools_version']} calc_metrics: {theirs:.3f} s (best of {args.repeats}: "
                  f"{', '.join(f'{t:.3f}' for t in rt['seconds'])})",
                  f"speed-up over RecTools: {theirs / ours:.1f}x (target >= 5x: "
                  f"{'met' if theirs / ours >= 5 else 'NOT met'}); largest relative difference of values: {diff_rt:.1e}"]
        if diff_rt > 1e-9:
            failures.append("values differ from RecTools'")
    else:
        lines += [f"metrics computed: {', '.join(got)}",
                  f"seminar_lib.metrics.evaluate: {ours:.3f} s (best of {args.repeats}: {', '.join(f'{t:.3f}' for t in times)})",
                  "RecTools: not run (pass --rectools-python)"]
    rows = {name: data[name].select(cols).rows() for name, cols in
            [("recos", ["user_id", "item_id", "rank"]), ("test", ["user_id", "item_id"]),
             ("train", ["user_id", "item_id"]), ("ref", ["user_id", "item_id", "rank"])]}
    start = time.perf_counter()
    reference = oracle_metrics(rows["recos"], rows["test"], rows["train"], 10, ref_rows=rows["ref"])
    ref_time = time.perf_counter() - start
    diff = max(abs(got[f"{m}@10"] - reference[m]) / max(abs(reference[m]), 1e-12) for m in reference)
    lines.append(f"per-user Python oracle: {ref_time:.3f} s ({ref_time / ours:.1f}x ours); "
                 f"largest relative difference of values: {diff:.1e}")
    if diff > 1e-9:
        failures.append("values differ from the oracle")
    report = "\n".join(lines) + "\n"
    print(report, end="")
    if args.output:
        args.output.write_text(report)
    if failures:
        raise SystemExit("; ".join(failures))


if __name__ == "__main__":
    main()
