"""A straightforward per-user Python implementation of the metrics: the test oracle and the
benchmark's reference. Deliberately plain loops over dictionaries — no polars, no numpy."""

from __future__ import annotations

import math
from collections import defaultdict


def _lists(recos_rows, k):
    lists = defaultdict(list)
    for user, item, rank in recos_rows:
        if rank <= k:
            lists[user].append((rank, item))
    return {u: [i for _, i in sorted(v)] for u, v in lists.items()}, {u: [r for r, _ in sorted(v)] for u, v in lists.items()}


def oracle_metrics(recos_rows, test_rows, train_rows, k, ref_rows=None):
    """All metrics @k from row tuples (user, item, rank), (user, item), (user, item) and, for
    intersection, the reference model's (user, item, rank). Returns a dict."""
    lists, ranks = _lists(recos_rows, k)
    relevant = defaultdict(set)
    for user, item in test_rows:
        relevant[user].add(item)
    sums = defaultdict(float)
    for user, rel in relevant.items():
        items, rk = lists.get(user, []), ranks.get(user, [])
        hits = [r for i, r in zip(items, rk) if i in rel]
        tp = len(hits)
        sums["hit_rate"] += tp > 0
        sums["precision"] += tp / k
        sums["recall"] += tp / len(rel)
        dcg = sum(1 / math.log2(r + 1) for r in hits)
        sums["dcg"] += dcg
        sums["ndcg"] += dcg / sum(1 / math.log2(i + 1) for i in range(1, k + 1))
        sums["ndcg_achievable"] += dcg / sum(1 / math.log2(i + 1) for i in range(1, min(k, len(rel)) + 1))
        sums["map"] += sum((n + 1) / r for n, r in enumerate(hits)) / len(rel)
        sums["mrr"] += 1 / hits[0] if hits else 0.0
        sums["covered_users"] += len(items) > 0
    out = {name: value / len(relevant) for name, value in sums.items()}

    item_users, item_rows, train_users = defaultdict(set), defaultdict(int), set()
    for user, item in train_rows:
        item_users[item].add(user)
        item_rows[item] += 1
        train_users.add(user)
    catalog = set(item_users)
    counts = sorted(set(item_rows.values()), reverse=True)
    pop_rank = {item: counts.index(c) + 1 for item, c in item_rows.items()}
    n = len(catalog)
    nov, pop, ser = [], [], []
    for user, items in lists.items():
        if not items:
            continue
        nov.append(sum(-math.log2(len(item_users.get(i, ())) or 1) + math.log2(len(train_users)) for i in items) / len(items))
        pop.append(sum(item_rows.get(i, 0) for i in items) / len(items))
        s = 0.0
        for i, r in zip(items, ranks[user]):
            if i in relevant.get(user, ()):
                p_any = (n + 1 - pop_rank[i]) / n if i in pop_rank else 0.0
                s += max((n + 1 - r) / n - p_any, 0.0)
        ser.append(s / len(items))
    out["novelty"] = sum(nov) / len(nov)
    out["avg_rec_popularity"] = sum(pop) / len(pop)
    out["serendipity"] = sum(ser) / len(ser)
    out["coverage"] = len({i for items in lists.values() for i in items}) / n
    if ref_rows is not None:
        ref_lists, _ = _lists(ref_rows, k)
        shares = [len(set(items) & set(ref_lists.get(u, ()))) / len(items) for u, items in lists.items() if items]
        out["intersection"] = sum(shares) / len(shares)
    return out
