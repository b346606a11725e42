"""RecTools' ``calc_metrics`` on the rows ``bench/metrics.py`` wrote — run in a throw-away RecTools environment.

RecTools stays out of the project's environment (on Python ≥ 3.10 it depends on ``pm-implicit``, which
installs over ``implicit``), so ``bench/metrics.py --rectools-python /tmp/rectools-venv/bin/python`` runs
this script there on the same rows, in the same run, and compares time and values:

    python3 -m venv /tmp/rectools-venv && /tmp/rectools-venv/bin/pip install rectools==0.19.0

Reads ``rows.npz`` (``recos_*``, ``ref_*``, ``test_*``, ``train_*`` arrays), prints one JSON object:
``{"rectools_version", "seconds": [...], "values": {"<metric>@<k>": value}}``. Needs only RecTools
(pandas, numpy), not ``seminar_lib``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd
import rectools
from rectools import Columns
from rectools.metrics import (
    MAP, MRR, NDCG, AvgRecPopularity, CatalogCoverage, HitRate, Intersection, MeanInvUserFreq, Precision, Recall,
    Serendipity, calc_metrics,
)

# our metric name -> RecTools' class (RecTools has no plain DCG; our evaluate computes it on top)
METRICS = {
    "hit_rate": HitRate, "precision": Precision, "recall": Recall, "ndcg": NDCG, "map": MAP, "mrr": MRR,
    "coverage": lambda k: CatalogCoverage(k, normalize=True), "novelty": MeanInvUserFreq,
    "serendipity": Serendipity, "avg_rec_popularity": AvgRecPopularity, "intersection": Intersection,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", help="the .npz file bench/metrics.py wrote")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    data = np.load(args.rows)
    frames = {}
    for name in ("recos", "ref", "test", "train"):
        frame = pd.DataFrame({Columns.User: data[f"{name}_user_id"], Columns.Item: data[f"{name}_item_id"]})
        if f"{name}_rank" in data:
            frame[Columns.Rank] = data[f"{name}_rank"]
        frames[name] = frame
    metrics = {f"{name}@{args.k}": make(args.k) for name, make in METRICS.items()}
    catalog = np.unique(data["train_item_id"])
    seconds, values = [], {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        # ref_reco as a one-entry dict: RecTools 0.19 tests a DataFrame's truth value (`if not ref_reco`)
        values = calc_metrics(metrics, reco=frames["recos"], interactions=frames["test"],
                              prev_interactions=frames["train"], catalog=catalog, ref_reco={"ref": frames["ref"]})
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"rectools_version": rectools.__version__, "seconds": seconds,
                      "values": {k.removesuffix("_ref"): float(v) for k, v in values.items()}}))


if __name__ == "__main__":
    main()
