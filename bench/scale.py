"""Benchmark: every model of the course at the seminars' scale — ML-1M-sized and KION-sized synthetic data.

Each model is fitted and scored through ``fit_and_evaluate`` on the global time split (80/10/10; fit on
train + validation, scored on the warm test users) — one epoch for the neural models — in its own
subprocess, so its peak memory (``ru_maxrss``) is its own. Printed per model: fit / recommend / evaluate
seconds, peak RSS, and issue 14's target next to each figure; the sequential models also print the
next-item scoring of the test events (and SASRec's achieved GFLOP/s against its FLOP floor).

    python bench/scale.py --size ml1m                              # every model, ML-1M size (~minutes)
    python bench/scale.py --size kion --models TopPopular EASE ALS  # a subset (KION size: split the run)
    python bench/scale.py --size kion --threads 2 --output bench/results/scale_kion.txt

Sizes (``--size``): ``ml1m`` — 6,040 users × 3,706 items, ~900k events; ``kion`` — 960,000 users ×
15,700 items, ~5.3M events. The dataset is generated once per size and cached as parquet in
``--cache`` (default ``$TMPDIR/seminar_scale``). Thread counts are set explicitly (torch, polars,
BLAS); on a shared machine compare runs only with each other, never with another machine's figures.
A model that runs past ``--timeout`` seconds is reported as not finished.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SIZES: dict[str, dict[str, Any]] = {
    "ml1m": dict(n_users=6_040, n_items=3_706, mean_events=165.0, min_events=20, seed=0),
    "kion": dict(n_users=960_000, n_items=15_700, mean_events=5.5, min_events=1, seed=0),
}
# the targets on a 2-core CPU (2 threads), KION size; None: no target at that size
TARGETS: dict[str, dict[str, float]] = {
    "TopPopular": {"total_s": 10.0},
    "EASE": {"fit+recommend_s": 180.0},
    "MF(bce)": {"fit_s": 120.0},
    "MF(bce, sparse)": {"fit_s": 120.0},
    "DSSM": {"fit_s": 120.0},
    "SASRec(softmax)": {"fit_s": 180.0, "next_item_s": 60.0},
    "SASRec(in_batch_logq)": {"fit_s": 180.0, "next_item_s": 60.0},
}
PEAK_TARGET_GB = 16.0
MODELS = ["TopPopular", "PersonalTopPopular", "EASE", "ALS", "MF(bce)", "MF(bce, sparse)", "DSSM", "SASRec(softmax)",
          "SASRec(in_batch_logq)", "BERT4Rec(softmax)"]
SEQUENTIAL = {"SASRec(softmax)", "SASRec(in_batch_logq)", "BERT4Rec(softmax)"}


# ----------------------------------------------------------------------------------------- the data
def dataset_path(size: str, cache: Path) -> Path:
    """The cached interactions of a size (generated on first use)."""
    import polars as pl

    from seminar_lib.datasets import load

    path = cache / f"synthetic-{size}.parquet"
    if not path.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        data = load("synthetic", **SIZES[size]).interactions
        print(f"generated {size}: {data.height:,} events, {data['user_id'].n_unique():,} users in "
              f"{time.perf_counter() - start:.1f} s", flush=True)
        tmp = path.with_suffix(".part")
        data.write_parquet(tmp)
        tmp.replace(path)
        del data
    stats = pl.scan_parquet(path).select(pl.len(), pl.col("user_id").n_unique(), pl.col("item_id").n_unique()).collect()
    print(f"{size}: {stats.item(0, 0):,} events, {stats.item(0, 1):,} users, {stats.item(0, 2):,} items ({path})",
          flush=True)
    return path


def make_model(name: str, size: str, device: str, threads: int):
    """The model behind a row of the table, with one epoch for the neural ones."""
    import torch

    from seminar_lib.models import ALS, EASE, PersonalTopPopular, TopPopular
    from seminar_lib.models.two_tower import DSSM
    from seminar_lib.models.mf import MatrixFactorization
    from seminar_lib.models.sequential import BERT4Rec, SASRec

    neural = dict(device=device, log_every=None)
    seq = dict(epochs=1, max_len=50, batch_size=256, valid_per_user=None, **neural)
    factories = {
        "TopPopular": lambda: TopPopular(),
        "PersonalTopPopular": lambda: PersonalTopPopular(),
        "EASE": lambda: EASE(500.0, device=device),
        "ALS": lambda: ALS(factors=64, iterations=15, num_threads=threads),
        "MF(bce)": lambda: MatrixFactorization("bce", epochs=1, **neural),
        "MF(bce, sparse)": lambda: MatrixFactorization("bce", epochs=1, sparse=True, **neural),
        "DSSM": lambda: DSSM("softmax", epochs=1, history="bag", **neural),
        "SASRec(softmax)": lambda: SASRec("softmax", **seq),
        "SASRec(in_batch_logq)": lambda: SASRec("in_batch_logq", **seq),
        "BERT4Rec(softmax)": lambda: BERT4Rec("softmax", **seq),
    }
    del torch
    return factories[name]()


# ------------------------------------------------------------------------------------ one model run
def gemm_gflops(threads: int, d: int = 64, n_items: int = 15_700, rows: int = 8192) -> float:
    """This machine's float32 GEMM rate for the output layer's shape ``(rows × d) @ (d × n_items)``."""
    import torch

    torch.set_num_threads(threads)
    a, b = torch.randn(rows, d), torch.randn(d, n_items)
    a @ b
    start = time.perf_counter()
    repeats = 5
    for _ in range(repeats):
        a @ b
    return 2 * rows * d * n_items * repeats / (time.perf_counter() - start) / 1e9


def softmax_floor_flops(train, max_len: int, d: int, n_items: int) -> float:
    """The FLOP floor of one full-softmax epoch: the output layer alone, ``6·T·d·N`` (forward 2·T·d·N,
    backward twice that) for ``T`` predicted positions — per user ``min(n_events, max_len + 1) − 1``."""
    import polars as pl

    lengths = train.group_by("user_id").len()["len"]
    positions = (lengths.clip(upper_bound=max_len + 1) - 1).clip(lower_bound=0).sum()
    del pl
    return 6.0 * float(positions) * d * n_items


def run_model(name: str, path: Path, size: str, device: str, threads: int) -> dict[str, Any]:
    """Fit and score one model (called in the worker subprocess); returns its figures."""
    import polars as pl
    import torch

    from seminar_lib.evaluation import fit_and_evaluate
    from seminar_lib.splits import global_time_split

    torch.set_num_threads(threads)
    data = pl.read_parquet(path)
    split = global_time_split(data)
    train, test = split.fit_data("test"), split.test
    del data
    model = make_model(name, size, device, threads)
    start = time.perf_counter()
    report = fit_and_evaluate(model, train, test, k=10, metrics=["ndcg", "recall", "coverage"])
    total = time.perf_counter() - start
    out: dict[str, Any] = {
        "fit_s": report.fit_seconds, "recommend_s": report.recommend_seconds,
        "evaluate_s": total - report.fit_seconds - report.recommend_seconds,
        "users": report.recos["user_id"].n_unique(), "ndcg@10": report.value("ndcg"),
    }
    if name in SEQUENTIAL:
        from seminar_lib.models.sequential import evaluate_next_item, next_item_samples

        samples = next_item_samples(pl.concat([train, test]), start=test["timestamp"].min())
        begin = time.perf_counter()
        next_report = evaluate_next_item(model, samples, k=10)
        out |= {"next_item_s": time.perf_counter() - begin, "next_item_samples": samples.n_samples,
                "next_item_ndcg@10": next_report.value("ndcg")}
        if name.startswith("SASRec(softmax"):
            flops = softmax_floor_flops(train, 50, 64, train["item_id"].n_unique())
            out |= {"floor_tflop": flops / 1e12, "achieved_gflops": flops / out["fit_s"] / 1e9,
                    "gemm_gflops": gemm_gflops(threads)}
    out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return out


def worker(args: argparse.Namespace) -> None:
    result = run_model(args.worker, Path(args.data), args.size, args.device, args.threads)
    print("RESULT " + json.dumps(result), flush=True)


# ------------------------------------------------------------------------------------------ the table
@dataclass
class Row:
    model: str
    figures: dict[str, Any] | None
    note: str = ""


def run_in_subprocess(name: str, path: Path, args: argparse.Namespace) -> Row:
    env = {**os.environ, "TQDM_DISABLE": "1", "POLARS_MAX_THREADS": str(args.threads),
           "OMP_NUM_THREADS": str(args.threads), "OPENBLAS_NUM_THREADS": str(args.threads),
           "MKL_NUM_THREADS": str(args.threads)}
    command = [sys.executable, __file__, "--worker", name, "--data", str(path), "--size", args.size,
               "--threads", str(args.threads), "--device", args.device]
    start = time.perf_counter()
    try:
        proc = subprocess.run(command, capture_output=True, text=True, env=env, timeout=args.timeout)
    except subprocess.TimeoutExpired:
        return Row(name, None, f"did not finish in {args.timeout} s")
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return Row(name, json.loads(line[len("RESULT "):]))
    tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
    return Row(name, None, f"failed after {time.perf_counter() - start:.0f} s: {' | '.join(tail)}")


def _check(value: float, target: float | None, unit: str = "s") -> str:
    if target is None:
        return ""
    return f" (target < {target:g} {unit}: {'met' if value < target else 'NOT met'})"


def format_row(row: Row, size: str) -> list[str]:
    if row.figures is None:
        return [f"{row.model:<24} {row.note}"]
    f = row.figures
    targets = TARGETS.get(row.model, {}) if size == "kion" else {}
    total = f["fit_s"] + f["recommend_s"] + f["evaluate_s"]
    lines = [f"{row.model:<24} fit {f['fit_s']:8.1f} s{_check(f['fit_s'], targets.get('fit_s'))}"
             f"   recommend {f['recommend_s']:7.1f} s ({f['users']:,} users)   evaluate {f['evaluate_s']:6.1f} s"
             f"   peak {f['peak_rss_gb']:5.2f} GB{_check(f['peak_rss_gb'], PEAK_TARGET_GB, 'GB')}"
             f"   nDCG@10 {f['ndcg@10']:.4f}"]
    if "total_s" in targets:
        lines.append(f"{'':<24} fit + recommend + evaluate {total:.1f} s{_check(total, targets['total_s'])}")
    if "fit+recommend_s" in targets:
        both = f["fit_s"] + f["recommend_s"]
        lines.append(f"{'':<24} fit + recommend {both:.1f} s{_check(both, targets['fit+recommend_s'])}")
    if "next_item_s" in f:
        lines.append(f"{'':<24} next-item scoring of {f['next_item_samples']:,} test events: {f['next_item_s']:.1f} s"
                     f"{_check(f['next_item_s'], targets.get('next_item_s'))}   nDCG@10 {f['next_item_ndcg@10']:.4f}")
    if "achieved_gflops" in f:
        share = f["achieved_gflops"] / f["gemm_gflops"]
        lines.append(f"{'':<24} full-softmax FLOP floor {f['floor_tflop']:.2f} TFLOP: achieved {f['achieved_gflops']:.1f} "
                     f"GFLOP/s = {share:.0%} of this machine's GEMM rate ({f['gemm_gflops']:.1f} GFLOP/s) "
                     f"(target: within 2x of the floor, >= 50%: {'met' if share >= 0.5 else 'NOT met'})")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="ml1m")
    parser.add_argument("--models", nargs="*", default=MODELS, help=f"some of {MODELS}")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per model")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "seminar_scale")
    parser.add_argument("--output", type=Path, help="also write the table to this file")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    if args.worker:
        worker(args)
        return
    unknown = sorted(set(args.models) - set(MODELS))
    if unknown:
        parser.error(f"unknown model(s) {unknown}; choose from {MODELS}")
    path = dataset_path(args.size, args.cache)
    header = (f"bench/scale.py --size {args.size}: {args.threads} threads, device {args.device}; targets are issue 14's "
              f"(KION size, 2-core CPU); peak = the model's subprocess ru_maxrss")
    lines = [header]
    print(header, flush=True)
    for name in args.models:
        row = run_in_subprocess(name, path, args)
        for line in format_row(row, args.size):
            print(line, flush=True)
            lines.append(line)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
