"""Benchmark: PersonalTopPopular top-10 for every ml-100k user vs a per-user ``map_elements`` loop.

Target (issue 3): ours ≥ 100× faster than the seed-style loop (for each user: filter the train
table, count the user's items, sort, take 10 — called through ``map_elements``), measured in the
same run on the same data; both must return the same lists.

    SEMINAR_DATA_DIR=../shared/data python bench/baselines.py [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import time

# One thread for polars as well as torch (set before polars is imported): on a shared 2-core machine a
# second thread mostly measures the neighbour's load.
os.environ.setdefault("POLARS_MAX_THREADS", "1")

import polars as pl  # noqa: E402
import torch  # noqa: E402

from seminar_lib.datasets import load  # noqa: E402
from seminar_lib.models.baselines import PersonalTopPopular  # noqa: E402


def seed_style(train: pl.DataFrame, users: pl.Series, k: int) -> pl.DataFrame:
    """The reference: one filter + group-by + sort per user, called with map_elements."""
    def top_for(user: int) -> list[int]:
        own = train.filter(pl.col("user_id") == user).group_by("item_id").len()
        return own.sort(["len", "item_id"], descending=[True, False]).head(k)["item_id"].to_list()
    lists = users.map_elements(top_for, return_dtype=pl.List(pl.Int64))
    return pl.DataFrame({"user_id": users, "item_id": lists}).explode("item_id").drop_nulls()


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="torch threads (polars: POLARS_MAX_THREADS, default 1)")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    train = load("ml-100k").interactions
    users = train["user_id"].unique().sort()
    k = 10
    model = PersonalTopPopular().fit(train)
    ours_time, ours = best_of(lambda: model.recommend(users, k=k, filter_viewed=False), args.repeats)
    ref_time, ref = best_of(lambda: seed_style(train, users, k), 3)
    same = ours.select("user_id", "item_id").equals(ref.select("user_id", "item_id"))
    print(f"users: {users.len()}, k = {k}, torch threads: {torch.get_num_threads()}, polars threads: {pl.thread_pool_size()}")
    print(f"PersonalTopPopular.recommend (batched):  {ours_time * 1000:8.1f} ms (best of {args.repeats})")
    print(f"per-user map_elements loop (seed style): {ref_time * 1000:8.1f} ms")
    ratio = ref_time / ours_time
    print(f"speed-up: {ratio:.0f}x (target >= 100x: {'met' if ratio >= 100 else 'NOT met'}); identical lists: {same}")
    if not same:
        raise SystemExit("the two implementations disagree")


if __name__ == "__main__":
    main()
