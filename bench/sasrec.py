"""Benchmark: SASRec (full softmax) training time per epoch — ours vs a re-creation of the seed-000 code.

Target (issue "Notebooks 05–06"): our ``SASRec(loss="softmax")`` trains an epoch at least 3× faster
than the seminar's implementation, with the same data and hyper-parameters, in the same run and with
the same number of threads, and its test metrics are no worse.

Data: ml-100k, the seed's iterated 5-core filter, its 80/10/10 global time split. Hyper-parameters
(both): dim 64, 2 heads, 2 layers, max_len 200, batch 256, Adam lr 1e-3, full softmax, dropout 0.2
(the seed defines DROPOUT_RATE = 0.1 but never passes it, so its backbone runs with its default 0.2).

The reference below re-creates the seed's implementation as it runs — per-sample ``Dataset`` with
numpy negatives, a ``collate_fn`` that concatenates Python lists into "packed" batches, a
``DataLoader`` with ``shuffle=True, drop_last=True``, ``nn.TransformerEncoder`` (post-norm, GELU,
causal + padding masks) fed by scattering the packed events into a padded tensor, full softmax
scored against ``item_encoder.weight.data`` (so the output side gets no gradient), validation every
64 steps keeping the best state by DCG@20 — including its bugs, because they are what is measured.
It is a reference for this benchmark, not library code.

Timing: seconds per epoch of training steps only (validation excluded on both sides), epochs of the
two models interleaved so that load from other processes hits both alike; the ratio is of the
medians. Note our epoch covers all 749 training sequences, the seed's only 512 (``drop_last``).

Quality: both models get the same number of epochs and keep their best validation state (the seed
validates every 64 steps on all its validation samples, ours every ``--validate-every`` epochs on
every validation event, per-user averaged); then on
the test period (every test event a target given all earlier events) both are scored two ways —
the seed's protocol (mean over events, no filtering of seen items, DCG as the seed computes it) and
the course's (filter-viewed, per-user average, RecTools nDCG) — with the same evaluation code
(:func:`seminar_lib.models.sequential.evaluate_next_item`; the seed model is wrapped as a
recommender).

    python bench/sasrec.py [--threads 1] [--epochs 40] [--timing-epochs 3]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

ROOT = Path(__file__).resolve().parents[1]
MIRROR = ROOT.parent / "shared" / "data"
if MIRROR.is_dir():
    os.environ.setdefault("SEMINAR_DATA_DIR", str(MIRROR))  # the ML-100K mirror beside the checkout
os.environ.setdefault("TQDM_DISABLE", "1")

from seminar_lib.datasets import load  # noqa: E402
from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch  # noqa: E402
from seminar_lib.models.sequential import SASRec, evaluate_next_item, next_item_samples  # noqa: E402
from seminar_lib.splits import IdEncoder  # noqa: E402

DIM, HEADS, LAYERS, MAX_LEN, BATCH, LR, DROPOUT = 64, 2, 2, 200, 256, 1e-3, 0.2


# ---------------------------------------------------------------------------------- seed: data prep
def seed_data(ratings: pl.DataFrame) -> dict:
    """The seed's preprocessing of (user_id, item_id, timestamp): iterated 5-core, dense item ids
    (rank − 1), thresholds at the 80 % / 90 % timestamps, per-user train histories (≥ 5 events)
    and one validation / test sample per event with at least one earlier event."""
    df = ratings.select("user_id", "item_id", "timestamp", pl.col("timestamp").dt.epoch("s").alias("ts"))
    while True:
        users = df.group_by("user_id").len().filter(pl.col("len") >= 5).select("user_id")
        items = df.group_by("item_id").len().filter(pl.col("len") >= 5).select("item_id")
        kept = df.join(users, on="user_id").join(items, on="item_id")
        if kept.height == df.height:
            break
        df = kept
    df = df.with_columns((pl.col("item_id").rank("dense") - 1).cast(pl.Int64).alias("item"))
    df = df.sort("user_id", "ts", "item", maintain_order=True)
    stamps = np.sort(df["ts"].to_numpy())
    first = stamps[int(len(stamps) * 0.8)]
    second = stamps[int(len(stamps) * 0.9)]
    train, valid, test = [], [], []
    for user, items, times in df.group_by("user_id", maintain_order=True).agg("item", "ts").iter_rows():
        history, train_history = [], []
        for item, ts in zip(items, times):
            if ts < first:
                train_history.append(item)
            elif ts < second:
                if history:
                    valid.append({"user_id": user, "history": history + [item]})
            elif history:
                test.append({"user_id": user, "history": history + [item]})
            history.append(item)
        if len(train_history) >= 5:
            train.append({"user_id": user, "history": train_history})
    n_items = int(df["item"].max()) + 1
    return {"train": train, "valid": valid, "test": test, "n_items": n_items, "frame": df,
            "first": first, "second": second}


class SeedDataset(Dataset):
    """One sample at a time: the last ``max_len`` inputs, their next items, random negatives."""

    def __init__(self, samples: list[dict], n_items: int, max_len: int) -> None:
        self.samples, self.n_items, self.max_len = samples, n_items, max_len

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> dict:
        items = [int(x) for x in self.samples[index]["history"]]
        inputs, nexts = items[:-1][-self.max_len:], items[1:][-self.max_len:]
        negatives = np.random.randint(0, self.n_items, size=len(inputs)).tolist()
        return {"history": {"item_ids": inputs, "lengths": len(inputs),
                            "positions": list(range(len(inputs) - 1, -1, -1))},
                "positives": {"item_ids": nexts}, "negatives": {"item_ids": negatives}}


def seed_collate(batch: list[dict]) -> dict:
    """Nested dicts of lists → one flat tensor per key (lists are concatenated with ``sum``)."""
    out = {}
    for key in batch[0]:
        values = [sample[key] for sample in batch]
        if isinstance(values[0], dict):
            out[key] = seed_collate(values)
        elif isinstance(values[0], list):
            out[key] = torch.tensor(sum(values, []), dtype=torch.long)
        else:
            out[key] = torch.tensor(values, dtype=torch.long)
    return out


# -------------------------------------------------------------------------------- seed: the model
def padding_mask(lengths: torch.Tensor) -> torch.Tensor:
    width = int(lengths.max())
    return torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]


def last_of_each(values: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    return values[torch.cumsum(lengths, dim=0) - 1]


class SeedSASRec(nn.Module):
    """The seed's backbone and its full-softmax head (``SasRecFull``)."""

    def __init__(self, n_items: int) -> None:
        super().__init__()
        self.item_encoder = nn.Embedding(n_items, DIM)
        self.position_embeddings = nn.Embedding(MAX_LEN, DIM)
        layer = nn.TransformerEncoderLayer(d_model=DIM, nhead=HEADS, dim_feedforward=4 * DIM, dropout=DROPOUT,
                                           activation="gelu", batch_first=True)
        self.transformer_encoder = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        with torch.no_grad():  # truncated normal(0.02) for weights, ones for norms, zeros for biases
            for name, value in self.named_parameters():
                if "weight" in name and "norm" in name:
                    nn.init.ones_(value)
                elif "weight" in name:
                    nn.init.trunc_normal_(value, std=0.02, a=-0.04, b=0.04)
                else:
                    nn.init.zeros_(value)

    def encode(self, batch: dict) -> torch.Tensor:
        history = batch["history"]
        mask = padding_mask(history["lengths"])
        n, width = mask.shape
        events = self.item_encoder(history["item_ids"]) + self.position_embeddings(history["positions"])
        tokens = events.new_zeros(n, width, DIM)
        tokens[mask] = events
        causal = torch.triu(torch.ones(width, width, dtype=torch.bool, device=tokens.device), diagonal=1)
        return self.transformer_encoder(tokens, mask=causal, src_key_padding_mask=~mask, is_causal=True)[mask]

    def loss(self, batch: dict) -> torch.Tensor:
        scores = self.encode(batch) @ self.item_encoder.weight.data.T  # .data: no gradient to the output side
        return nn.functional.cross_entropy(scores, batch["positives"]["item_ids"])

    def scores(self, batch: dict) -> torch.Tensor:
        last = last_of_each(self.encode(batch), batch["history"]["lengths"])
        return last @ self.item_encoder.weight.data.T


def seed_dcg20(model: SeedSASRec, loader: DataLoader) -> float:
    """The seed's validation metric: DCG@20 averaged over samples, no filtering of seen items."""
    model.eval()
    gains = []
    with torch.no_grad():
        for batch in loader:
            top = torch.topk(model.scores(batch), k=20, dim=-1).indices
            target = last_of_each(batch["positives"]["item_ids"], batch["history"]["lengths"])
            hits = (top == target[:, None]).float()
            gains.append(hits @ (1.0 / torch.log2(torch.arange(2, 22).float())))
    return float(torch.cat(gains).mean())


class SeedAsRecommender(Recommender):
    """Wraps the trained seed model so the library's next-item evaluation can score it: histories
    are cut to the last ``max_len`` events and packed as the seed packs them."""

    scores_from_history = True

    def __init__(self, model: SeedSASRec, item_ids: pl.Series, user_ids: pl.Series) -> None:
        self.model = model
        self.items_ = IdEncoder.fit(item_ids)  # sorted ids: code = rank − 1, the seed's item index
        self.users_ = IdEncoder.fit(user_ids)

    @property
    def name(self) -> str:
        return "seed SASRec"

    def _fit(self, data: EncodedInteractions) -> None:
        raise NotImplementedError("the seed model is trained by its own loop")

    def _score(self, batch: UserBatch) -> torch.Tensor:
        events = batch.events.group_by("row", maintain_order=True).agg(pl.col("item").tail(MAX_LEN))
        rows = dict(zip(events["row"].to_list(), events["item"].to_list()))
        histories = [rows.get(r, []) for r in range(len(batch.user))]
        packed = [h if h else [0] for h in histories]
        inputs = {"history": {"item_ids": torch.tensor(sum(packed, []), dtype=torch.long),
                              "lengths": torch.tensor([len(h) for h in packed]),
                              "positions": torch.tensor(sum([list(range(len(h) - 1, -1, -1)) for h in packed], []))}}
        self.model.eval()
        with torch.no_grad():
            scores = self.model.scores(inputs)
        empty = torch.tensor([not h for h in histories])
        return scores.masked_fill(empty[:, None], -torch.inf)


def train_seed(data: dict, epochs: int, seed: int, on_epoch) -> tuple[SeedSASRec, list[float]]:
    """The seed's loop: Adam, validation every 64 steps keeping the best state; returns the model
    with the best state loaded and the training seconds of each epoch."""
    torch.manual_seed(seed)
    np.random.seed(seed)
    model = SeedSASRec(data["n_items"])
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    train_loader = DataLoader(SeedDataset(data["train"], data["n_items"], MAX_LEN), batch_size=BATCH, shuffle=True,
                              drop_last=True, collate_fn=seed_collate)
    valid_loader = DataLoader(SeedDataset(data["valid"], data["n_items"], MAX_LEN), batch_size=BATCH, shuffle=False,
                              drop_last=False, collate_fn=seed_collate)
    best, best_state, step, seconds = -1.0, copy.deepcopy(model.state_dict()), 0, []
    for _ in range(epochs):
        spent = 0.0
        start = time.perf_counter()
        for batch in train_loader:
            model.train()
            loss = model.loss(batch)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if step % 64 == 0:
                spent += time.perf_counter() - start
                value = seed_dcg20(model, valid_loader)
                if value > best:
                    best, best_state = value, copy.deepcopy(model.state_dict())
                start = time.perf_counter()
        seconds.append(spent + time.perf_counter() - start)
        on_epoch()
    value = seed_dcg20(model, valid_loader)
    if value > best:
        best_state = copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    return model, seconds


# ------------------------------------------------------------------------------------------- main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    parser.add_argument("--epochs", type=int, default=40, help="training epochs of each model (quality part)")
    parser.add_argument("--timing-epochs", type=int, default=3, help="epochs timed per model, interleaved")
    parser.add_argument("--validate-every", type=int, default=4,
                        help="our validation schedule in epochs (every validation event; the seed: every 64 steps)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    ratings = load("ml-100k").interactions
    data = seed_data(ratings)
    frame = data["frame"]
    events = frame.select("user_id", "item_id", "timestamp")
    train = frame.filter(pl.col("ts") < data["first"]).select(events.columns)
    valid = frame.filter((pl.col("ts") >= data["first"]) & (pl.col("ts") < data["second"])).select(events.columns)
    test_start = frame.filter(pl.col("ts") >= data["second"])["timestamp"].min()
    print(f"ml-100k after the seed's 5-core: {frame.height:,} events, {frame['user_id'].n_unique()} users, "
          f"{data['n_items']} items; train sequences: seed {len(data['train'])} (≥ 5 events), "
          f"ours {train.group_by('user_id').len().filter(pl.col('len') >= 2).height} (≥ 2 events)")
    print(f"validation samples {len(data['valid']):,}, test samples {len(data['test']):,}; "
          f"torch threads {torch.get_num_threads()}")

    # ---- timing: interleave epochs of the two implementations
    ours_timing = SASRec("softmax", dim=DIM, heads=HEADS, layers=LAYERS, max_len=MAX_LEN, batch_size=BATCH, lr=LR,
                         dropout=DROPOUT, epochs=2, log_every=None, seed=args.seed, device="cpu")
    ours_times, seed_times = [], []
    for _ in range(args.timing_epochs):  # two epochs per fit, the second one timed (warm allocator, warm caches)
        ours_timing.fit(train)
        ours_times.append(ours_timing.epoch_seconds_[1])
        seed_times.append(train_seed(data, 2, args.seed, lambda: None)[1][1])
    ours_med, seed_med = statistics.median(ours_times), statistics.median(seed_times)
    ratio = seed_med / ours_med
    print(f"seconds per epoch (median of {args.timing_epochs}): seed {seed_med:.2f} "
          f"[{', '.join(f'{t:.2f}' for t in seed_times)}], ours {ours_med:.2f} "
          f"[{', '.join(f'{t:.2f}' for t in ours_times)}]")
    print(f"per training sequence: seed {seed_med / (BATCH * (len(data['train']) // BATCH)) * 1e3:.2f} ms, "
          f"ours {ours_med / ours_timing.n_train_sequences_ * 1e3:.2f} ms")
    print(f"speed-up per epoch: {ratio:.2f}x (target >= 3x: {'met' if ratio >= 3 else 'NOT met'})")
    if args.epochs <= 0:
        return

    # ---- quality: same epochs, best validation state, test on every test event
    ours = SASRec("softmax", dim=DIM, heads=HEADS, layers=LAYERS, max_len=MAX_LEN, batch_size=BATCH, lr=LR,
                  dropout=DROPOUT, epochs=args.epochs, validate_every=args.validate_every, valid_per_user=None,
                  log_every=None, seed=args.seed, device="cpu")
    start = time.perf_counter()
    ours.fit(train, valid)
    ours_fit = time.perf_counter() - start
    start = time.perf_counter()
    seed_model, seed_epochs = train_seed(data, args.epochs, args.seed, lambda: None)
    seed_fit = time.perf_counter() - start
    print(f"fit {args.epochs} epochs with validation: seed {seed_fit:.0f} s, ours {ours_fit:.0f} s "
          f"(best epoch {ours.train_result_.best_epoch})")
    samples = next_item_samples(events, start=test_start)
    wrapped = SeedAsRecommender(seed_model, frame["item_id"], frame["user_id"])
    rows = []
    for label, model in (("seed", wrapped), ("ours", ours)):
        seed_way = evaluate_next_item(model, samples, k=10, metrics=("hit_rate", "dcg"), filter_viewed=False,
                                      average="event", with_coverage=False, batch_size=256)
        course = evaluate_next_item(model, samples, k=10, metrics=("hit_rate", "ndcg"), average="user",
                                    bootstrap=1000, seed=args.seed, batch_size=256)
        rows.append({"model": label,
                     "seed-way HR@10": round(seed_way.value("hit_rate"), 4), "seed-way DCG@10": round(seed_way.value("dcg"), 4),
                     "HR@10 (per user)": round(course.value("hit_rate"), 4), "nDCG@10 (per user)": round(course.value("ndcg"), 4),
                     "nDCG 95% CI": "[{:.4f}, {:.4f}]".format(*course.metrics.filter(pl.col("metric") == "ndcg")
                                                            .select("ci_low", "ci_high").row(0)),
                     "coverage@10": round(course.value("coverage"), 4)})
    with pl.Config(tbl_rows=10, tbl_cols=10, tbl_width_chars=200):
        print(pl.DataFrame(rows))
    print(f"test samples: {samples.n_samples:,} events of {samples.n_users} users")


if __name__ == "__main__":
    main()
