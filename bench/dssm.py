"""Benchmark: DSSM training samples per second — our vectorized pipeline vs the seed's per-sample one.

The seed notebook (001) built every training sample in ``Dataset.__getitem__`` with pandas ``.iloc``
(the user's one-hot row, the positive's and 10 negatives' one-hot rows, the user's dense normalized
history row), batched by a ``torch.utils.data.DataLoader`` with the default collate. Here it is
re-created faithfully on ml-100k (the same one-hot features as the library's ``ml-100k`` preset, a
dense ``users × items`` float64 bag matrix as in the seed) and timed in the same run, with the same
thread count, against ours:

1. *pipeline* — producing one batch of tower inputs: seed = DataLoader batches; ours = a seeded
   batch of observed pairs, 10 negatives per pair that are neither the positive nor seen items,
   the users' history bags (ragged gather, sparse), and the one-hot feature rows — all tensor ops;
2. *training step* — pipeline + towers + loss + backward + Adam: seed = its towers (the "LN"
   version, including its doubled-layer "residual") with its triplet loss; ours = ``DSSM`` with the
   seed's inputs (``features="onehot"``, ``history="bag"``, triplet loss, 10 negatives).

A sample is one (user, positive, negatives) training example on both sides. Target: ours ≥ 100×
faster (pipeline), and one epoch of the default ``DSSM`` on ml-100k in a few seconds.

    SEMINAR_DATA_DIR=../shared/data python bench/dssm.py [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch (and polars) threads for both sides")
    parser.add_argument("--seed-samples", type=int, default=4096, help="samples timed on the slow seed side")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings of our side")
    args = parser.parse_args()
    os.environ.setdefault("POLARS_MAX_THREADS", str(args.threads))  # must precede the polars import

    import numpy as np
    import pandas as pd
    import polars as pl
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, Dataset

    from seminar_lib.datasets import load
    from seminar_lib.features import PRESETS, FeatureEncoder
    from seminar_lib.models.two_tower import DSSM, ragged_rows, sample_unseen_negatives
    from seminar_lib.training import epoch_batches

    torch.set_num_threads(args.threads)
    ds = load("ml-100k")
    interactions = ds.interactions
    preset = PRESETS["ml-100k"]

    # ------------------------------------------------------------------ the seed's pipeline
    def to_pandas(frame: pl.DataFrame) -> pd.DataFrame:  # (no pyarrow needed)
        return pd.DataFrame({c: frame[c].to_numpy() for c in frame.columns})

    users_sorted = interactions["user_id"].unique().sort()
    items_sorted = interactions["item_id"].unique().sort()
    # one-hot tables in the order of the dense codes (here sorted ids, so positional rows are right)
    users_ohe = to_pandas(FeatureEncoder(preset.users, "user_id").fit(ds.users).frame(users_sorted))
    items_ohe = to_pandas(FeatureEncoder(preset.items, "item_id").fit(ds.items).frame(items_sorted))
    users_ohe, items_ohe = users_ohe.drop(columns="user_id"), items_ohe.drop(columns="item_id")
    uid = interactions["user_id"].rank("dense").to_numpy().astype(np.int64) - 1
    iid = interactions["item_id"].rank("dense").to_numpy().astype(np.int64) - 1
    bag = np.zeros((len(users_sorted), len(items_sorted)))  # the seed's dense float64 users × items matrix
    np.add.at(bag, (uid, iid), 1.0)
    bag /= bag.sum(axis=1, keepdims=True)

    class RecSysDataset(Dataset):  # the seed's dataset, as written there (minus the .to(device) of each sample)
        def __init__(self, items, users, interactions, num_negs=10):
            self.items, self.users, self.interactions, self.num_negs = items, users, interactions, num_negs

        def __len__(self):
            return self.interactions.shape[0]

        def __getitem__(self, idx):
            uid = idx
            pos_i = np.random.choice(range(self.interactions.shape[1]), p=self.interactions[uid])
            neg_is = np.random.choice(range(self.interactions.shape[1]), size=self.num_negs, replace=False)
            uid_meta = self.users.iloc[uid].values
            uid_interaction = self.interactions[uid]
            pos = self.items.iloc[pos_i].values
            negs = np.stack([self.items.iloc[neg_i].values for neg_i in neg_is])
            return (torch.tensor(uid_meta, dtype=torch.float32), torch.tensor(uid_interaction, dtype=torch.float32),
                    torch.tensor(pos, dtype=torch.float32), torch.tensor(negs, dtype=torch.float32))

    n_factors = 128

    class ItemModel(nn.Module):  # the seed's "LN" towers (the residual re-applies fc2, as there)
        def __init__(self):
            super().__init__()
            self.fc1, self.ln1 = nn.Linear(items_ohe.shape[1], n_factors), nn.LayerNorm(n_factors)
            self.fc2, self.fc3 = nn.Linear(n_factors, n_factors), nn.Linear(n_factors, n_factors)
            self.dropout = nn.Dropout(0.2)

        def forward(self, x):
            x = self.dropout(torch.relu(self.ln1(self.fc1(x))))
            x = torch.relu(self.fc2(x))
            return self.fc3(x + torch.relu(self.fc2(x)))

    class UserModel(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1_meta, self.ln_meta = nn.Linear(users_ohe.shape[1], n_factors), nn.LayerNorm(n_factors)
            self.fc2_meta, self.dropout = nn.Linear(n_factors, n_factors), nn.Dropout(0.2)
            self.fc1_interaction, self.ln_inter = nn.Linear(bag.shape[1], n_factors), nn.LayerNorm(n_factors)
            self.fc2_inter, self.fc3 = nn.Linear(n_factors, n_factors), nn.Linear(2 * n_factors, n_factors)

        def forward(self, meta, interaction):
            meta = self.dropout(torch.relu(self.ln_meta(self.fc1_meta(meta))))
            meta = torch.relu(self.fc2_meta(meta))
            meta = meta + torch.relu(self.fc2_meta(meta))
            interaction = self.dropout(torch.relu(self.ln_inter(self.fc1_interaction(interaction))))
            interaction = torch.relu(self.fc2_inter(interaction))
            return self.fc3(torch.cat([meta, interaction], dim=1))

    def triplet(anchor, positive, negative, alpha=0.4):
        basic = (anchor - positive).square().sum(1) - (anchor - negative).square().sum(1) + alpha
        return torch.clamp(basic, min=0).mean()

    def seed_rate(train_step: bool) -> float:
        np.random.seed(0)
        torch.manual_seed(0)
        loader = DataLoader(RecSysDataset(items_ohe, users_ohe, bag), batch_size=1024, shuffle=True)
        i2v, u2v = ItemModel(), UserModel()
        optimizer = torch.optim.Adam([*i2v.parameters(), *u2v.parameters()], lr=1e-3)
        done, start = 0, time.perf_counter()
        while done < args.seed_samples:
            for meta, inter, pos, negs in loader:
                if train_step:
                    anchor, positive = u2v(meta, inter), i2v(pos)
                    b, n, f = negs.shape
                    negative = i2v(negs.view(-1, f)).view(b, n, -1)
                    loss = triplet(anchor, positive, negative[:, 0, :])  # the seed encodes 10, uses 1
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                done += meta.shape[0]
                if done >= args.seed_samples:
                    break
        return done / (time.perf_counter() - start)

    # ------------------------------------------------------------------------- our pipeline
    def our_pipeline_rate() -> float:
        """Tower inputs for every observed pair of ml-100k, batch by batch, as DSSM builds them."""
        model = DSSM(user_features=ds.users, item_features=ds.items, preset="ml-100k", features="onehot",
                     loss="triplet", n_negatives=10, epochs=0, device="cpu", log_every=None).fit(interactions)
        user_x = model.user_encoder_.encode(model.users_.ids)
        item_x = model.item_encoder_.encode(model.items_.ids)
        coo = model.viewed_.tocoo()
        users = torch.as_tensor(coo.row, dtype=torch.long)
        items = torch.as_tensor(coo.col, dtype=torch.long)
        n_items = len(model.items_)
        generator = torch.Generator().manual_seed(0)
        start = time.perf_counter()
        for idx in epoch_batches(users.shape[0], 1024, generator):
            u, i = users[idx], items[idx]
            neg = sample_unseen_negatives(u, i, model._seen_keys, n_items, 10, generator)       # (B, 10)
            unique, inverse = torch.unique(u, return_inverse=True)
            flat, offsets, counts = ragged_rows(model._indptr, model._hist_items, unique)         # sparse bags
            weights = (1.0 / counts.clamp(min=1).float()).repeat_interleave(counts)              # normalized
            meta = user_x[u].dense()                                                             # (B, F_u)
            pos_x = item_x[i].dense()                                                            # (B, F_i)
            neg_x = item_x[neg.reshape(-1)].dense().view(neg.shape[0], neg.shape[1], -1)         # (B, 10, F_i)
            del inverse, flat, offsets, weights, meta, pos_x, neg_x
        return users.shape[0] / (time.perf_counter() - start)

    def our_step_rate(**options) -> tuple[float, float]:
        model = DSSM(user_features=ds.users, item_features=ds.items, preset="ml-100k", epochs=2, device="cpu",
                     log_every=None, **options).fit(interactions)
        seconds = min(model.epoch_seconds_)
        return model.viewed_.nnz / seconds, seconds

    print(f"ml-100k: {interactions.height:,} interactions ({interactions.unique(['user_id', 'item_id']).height:,} "
          f"distinct pairs), torch threads: {torch.get_num_threads()}, polars threads: {pl.thread_pool_size()}")
    seed_pipe = seed_rate(train_step=False)
    ours_pipe = max(our_pipeline_rate() for _ in range(args.repeats))
    verdict = "met" if ours_pipe >= 100 * seed_pipe else "NOT met"
    print(f"pipeline  seed (Dataset .iloc + DataLoader + collate): {seed_pipe:>12,.0f} samples/s")
    print(f"pipeline  ours (tensor ops, 10 unseen negatives):      {ours_pipe:>12,.0f} samples/s   "
          f"ratio {ours_pipe / seed_pipe:,.0f}x (target >= 100x: {verdict})")
    seed_step = seed_rate(train_step=True)
    ours_step, _ = max(our_step_rate(features="onehot", history="bag", loss="triplet", n_negatives=10)
                       for _ in range(args.repeats))
    print(f"training  seed (pipeline + its towers, triplet):       {seed_step:>12,.0f} samples/s")
    print(f"training  ours (DSSM onehot + bag, triplet, 10 neg):   {ours_step:>12,.0f} samples/s   "
          f"ratio {ours_step / seed_step:,.0f}x")
    rate, seconds = max(our_step_rate() for _ in range(args.repeats))
    print(f"one epoch of the default DSSM (softmax, embeddings, bag) on ml-100k: {seconds:.2f} s "
          f"({rate:,.0f} samples/s)")


if __name__ == "__main__":
    main()
