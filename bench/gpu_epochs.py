"""Benchmark: seconds per training epoch of every torch model on CUDA against the CPU, on the same data.

Data: the offline ``synthetic`` dataset at ML-1M's shape with fewer events (6,040 users × 3,706 items,
~40 events a user), global time split, train part. Each model trains ``--epochs`` epochs on each
device with the same seed; printed: seconds per epoch (the mean after the first, which pays for
warm-up), the ratio, and the training loss of the last epoch on both devices (the same seed draws the
same batches and negatives on both, so the losses agree up to float rounding). AMP / TF32 stay off:
results must stay within the notebooks' tolerances, and full float32 is what the CPU computes.

    python bench/gpu_epochs.py [--epochs 2] [--threads 16] [--models MF DSSM SASRec BERT4Rec]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from seminar_lib.datasets import load  # noqa: E402
from seminar_lib.models import BERT4Rec, DSSM, MatrixFactorization, SASRec  # noqa: E402
from seminar_lib.splits import global_time_split  # noqa: E402

MODELS = {
    "MF": lambda device, epochs: MatrixFactorization("bce", epochs=epochs, sparse=True, device=device, log_every=None),
    "DSSM": lambda device, epochs: DSSM("softmax", epochs=epochs, device=device, log_every=None),
    "SASRec": lambda device, epochs: SASRec("softmax", epochs=epochs, max_len=50, batch_size=256, valid_per_user=None,
                                            device=device, log_every=None),
    "BERT4Rec": lambda device, epochs: BERT4Rec("softmax", epochs=epochs, max_len=50, batch_size=256,
                                                valid_per_user=None, device=device, log_every=None),
}


def per_epoch(model, train) -> tuple[float, float]:
    """Mean seconds of the epochs after the first (all of them if there is one) and the last loss."""
    start = time.perf_counter()
    model.fit(train)
    total = time.perf_counter() - start
    seconds = list(getattr(model.train_result_, "epoch_seconds", []) or [total])
    steady = seconds[1:] or seconds
    return sum(steady) / len(steady), float(model.train_result_.history["loss"][-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this benchmark compares CUDA with the CPU")
    torch.set_num_threads(args.threads)
    train = global_time_split(load("synthetic", n_users=6040, n_items=3706, mean_events=40, seed=0).interactions).train
    print(f"train: {train.height:,} events; CPU threads {args.threads}; GPU {torch.cuda.get_device_name(0)}; "
          f"AMP off, TF32 matmul {torch.backends.cuda.matmul.allow_tf32}", flush=True)
    for name in args.models:
        cpu_s, cpu_loss = per_epoch(MODELS[name]("cpu", args.epochs), train)
        gpu_s, gpu_loss = per_epoch(MODELS[name]("cuda", args.epochs), train)
        print(f"{name:<9} cpu {cpu_s:8.2f} s/epoch   cuda {gpu_s:7.2f} s/epoch   speed-up {cpu_s / gpu_s:6.1f}x   "
              f"last loss cpu {cpu_loss:.4f} cuda {gpu_loss:.4f}", flush=True)


if __name__ == "__main__":
    main()
