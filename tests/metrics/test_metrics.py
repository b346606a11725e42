"""Metrics: hand-computed examples, edge cases, RecTools parity, the Python oracle, bootstrap, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from oracle import oracle_metrics
from seminar_lib.errors import SchemaError
from seminar_lib.metrics import (
    METRICS, avg_rec_popularity, coverage, covered_users, dcg, evaluate, hit_rate, idcg, intersection, map_at_k, mrr, ndcg, ndcg_achievable, novelty,
    per_user_metrics, precision, recall, serendipity, to_wide,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "rectools_reference"
ACCURACY = ["hit_rate", "precision", "recall", "dcg", "ndcg", "map", "mrr"]


def frame(rows, cols=("user_id", "item_id", "rank")):
    return pl.DataFrame(rows, schema=list(cols), orient="row")


def values(table: pl.DataFrame) -> dict[str, float]:
    return {f"{m}@{k}": v for m, k, v in table.select("metric", "k", "value").iter_rows()}


# ------------------------------------------------------------------ a textbook example, computed by hand
# user 1: list [a, b, c, d], relevant {b, d, e}; user 2: list [x, y], relevant {x}; user 3: no list, relevant {a}
RECOS = frame([(1, "a", 1), (1, "b", 2), (1, "c", 3), (1, "d", 4), (2, "x", 1), (2, "y", 2)])
TEST = frame([(1, "b"), (1, "d"), (1, "e"), (2, "x"), (3, "a")], ("user_id", "item_id"))


def test_hand_computed_example_at_4():
    got = values(evaluate(RECOS, TEST, k=4, metrics=ACCURACY))
    l2 = math.log2
    expected = {
        "hit_rate@4": 2 / 3,
        "precision@4": (2 / 4 + 1 / 4 + 0) / 3,
        "recall@4": (2 / 3 + 1 + 0) / 3,
        "dcg@4": (1 / l2(3) + 1 / l2(5) + 1) / 3,
        "ndcg@4": ((1 / l2(3) + 1 / l2(5)) / idcg(4) + 1 / idcg(4)) / 3,
        "map@4": ((1 / 2 + 2 / 4) / 3 + 1 / 1) / 3,
        "mrr@4": (1 / 2 + 1) / 3,
    }
    assert got == pytest.approx(expected, rel=1e-12)


def test_per_metric_functions_agree_with_evaluate():
    table = values(evaluate(RECOS, TEST, k=(1, 3)))
    for fn, name in [(hit_rate, "hit_rate"), (precision, "precision"), (recall, "recall"), (dcg, "dcg"),
                     (ndcg, "ndcg"), (map_at_k, "map"), (mrr, "mrr")]:
        for k in (1, 3):
            assert fn(RECOS, TEST, k=k) == pytest.approx(table[f"{name}@{k}"])
    per_user = ndcg(RECOS, TEST, k=3, per_user=True)
    assert per_user.columns == ["user_id", "value"] and per_user["user_id"].to_list() == [1, 2, 3]
    assert per_user["value"][2] == 0.0  # the user without recommendations counts, with 0


def test_perfect_and_useless_recommendations():
    test = frame([(u, i) for u in range(5) for i in range(3)], ("user_id", "item_id"))
    perfect = frame([(u, i, i + 1) for u in range(5) for i in range(3)])
    useless = frame([(u, i + 10, i + 1) for u in range(5) for i in range(3)])
    good = values(evaluate(perfect, test, k=3, metrics=ACCURACY))
    assert all(v == pytest.approx(1.0) for name, v in good.items() if not name.startswith("dcg")), good
    assert good["dcg@3"] == pytest.approx(idcg(3))
    bad = values(evaluate(useless, test, k=3, metrics=ACCURACY))
    assert all(v == 0.0 for v in bad.values())


def test_ndcg_rectools_convention_penalises_short_test_sets():
    recos, test = frame([(1, 7, 1), (1, 8, 2)]), frame([(1, 7)], ("user_id", "item_id"))
    assert ndcg(recos, test, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert map_at_k(recos, test, k=2) == 1.0  # MAP divides by the number of relevant items


def test_ndcg_achievable_by_hand():
    # user 1: relevant {b, d, e}, hits at ranks 2 and 4 of 4 -> ideal: 3 hits at ranks 1..3 (min(k=4, 3) = 3)
    # user 2: relevant {x}, hit at rank 1 -> 1; user 3: no list -> 0
    l2 = math.log2
    user1 = (1 / l2(3) + 1 / l2(5)) / (1 + 1 / l2(3) + 1 / l2(4))
    assert ndcg_achievable(RECOS, TEST, k=4) == pytest.approx((user1 + 1 + 0) / 3, rel=1e-12)
    # at k=1 the ideal of every user is one hit at rank 1
    assert ndcg_achievable(RECOS, TEST, k=1) == pytest.approx((0 + 1 + 0) / 3, rel=1e-12)


def test_ndcg_achievable_is_dcg_with_one_target_and_reaches_one():
    recos = frame([(1, 7, 1), (1, 8, 2), (2, 5, 1), (2, 9, 2)])
    one_target = frame([(1, 8), (2, 6)], ("user_id", "item_id"))
    assert ndcg_achievable(recos, one_target, k=2) == pytest.approx(dcg(recos, one_target, k=2), rel=1e-12)
    assert ndcg(recos, one_target, k=2) < ndcg_achievable(recos, one_target, k=2)
    perfect = frame([(1, 7, 1), (1, 8, 2), (2, 5, 1)])
    assert ndcg_achievable(perfect, frame([(1, 7), (1, 8), (2, 5)], ("user_id", "item_id")), k=5) == pytest.approx(1.0)


def test_covered_users_by_hand():
    # the textbook example: users 1 and 2 have lists, test user 3 has none -> 2/3 at every k
    assert covered_users(RECOS, TEST, k=1) == pytest.approx(2 / 3) and covered_users(RECOS, TEST, k=4) == pytest.approx(2 / 3)
    # a user whose only recommendation is at rank 3 is covered from k = 3 on; recommended users outside test don't count
    recos = frame([(1, 5, 1), (2, 6, 3), (9, 7, 1)])
    test = frame([(1, 5), (2, 5), (3, 5), (4, 5)], ("user_id", "item_id"))
    assert covered_users(recos, test, k=2) == pytest.approx(1 / 4)
    assert covered_users(recos, test, k=3) == pytest.approx(2 / 4)
    per_user = covered_users(recos, test, k=3, per_user=True)
    assert per_user["user_id"].to_list() == [1, 2, 3, 4] and per_user["value"].to_list() == [1.0, 1.0, 0.0, 0.0]
    assert "covered_users@3" not in values(evaluate(recos, test, k=3))  # asked for by name only


def test_beyond_accuracy_by_hand():
    train = frame([(1, 1), (2, 1), (3, 1), (3, 2), (4, 3)], ("user_id", "item_id"))
    recos = frame([(10, 1, 1), (10, 2, 2), (11, 4, 1)])  # item 4 is unseen in train
    test = frame([(10, 2), (11, 4)], ("user_id", "item_id"))
    # novelty: user 10: (-log2(3/4) - log2(1/4)) / 2; user 11: -log2(1/4) (an unseen item counts as one user)
    nov = ((-math.log2(3 / 4) + 2) / 2 + 2) / 2
    assert novelty(recos, train, k=2) == pytest.approx(nov)
    assert avg_rec_popularity(recos, train, k=2) == pytest.approx(((3 + 1) / 2 + 0) / 2)
    assert coverage(recos, k=2, train=train) == pytest.approx(3 / 3)
    assert coverage(recos, k=1, catalog=[1, 2, 3, 4, 5]) == pytest.approx(2 / 5)
    # serendipity: n = 3 catalogue items; popularity ranks: item 1 → 1, items 2, 3 → 2
    # user 10: item 2 at rank 2 is relevant: p = (3+1-2)/3, p_any = (3+1-2)/3 → 0; user 11: item 4 cold → p_any 0
    ser = (0 + (3 + 1 - 1) / 3) / 2
    assert serendipity(recos, test, train, k=2) == pytest.approx(ser)
    ref = frame([(10, 2, 1), (10, 9, 2)])
    assert intersection(recos, ref, k=2) == pytest.approx((1 / 2 + 0) / 2)


@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_parity_with_rectools(k):
    """Reference values made by RecTools 0.19 (tests/fixtures/rectools_reference/make_reference.py)."""
    data = {n: pl.read_csv(FIXTURE / f"{n}.csv") for n in ("recos", "test", "train", "ref_recos")}
    expected = json.loads((FIXTURE / "expected.json").read_text())["values"]
    got = values(evaluate(data["recos"], data["test"], train=data["train"], ref_recos=data["ref_recos"], k=k))
    compared = {name: v for name, v in expected.items() if name.endswith(f"@{k}")}
    assert len(compared) == 11
    for name, value in compared.items():
        assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-15), name


def random_case(seed: int, n_users: int = 60, n_items: int = 40):
    rng = np.random.default_rng(seed)
    train = [(u, int(i)) for u in range(n_users) for i in rng.choice(n_items, rng.integers(1, 10), replace=False)]
    test = [(u, int(i)) for u in range(0, n_users, 2) for i in rng.choice(n_items + 3, rng.integers(1, 6), replace=False)]
    recos = []
    for u in range(5, n_users + 5):
        items = rng.choice(n_items + 3, rng.integers(1, 12), replace=False)
        recos += [(u, int(i), r + 1) for r, i in enumerate(items)]
    return recos, test, train


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_agrees_with_the_python_oracle(seed, k):
    recos, test, train = random_case(seed)
    ref, _, _ = random_case(seed + 100)
    got = values(evaluate(frame(recos), frame(test, ("user_id", "item_id")),
                          train=frame(train, ("user_id", "item_id")), ref_recos=frame(ref), k=k,
                          metrics=list(METRICS)))
    expected = oracle_metrics(recos, test, train, k, ref_rows=ref)
    assert len(expected) == len(METRICS)
    for name, value in expected.items():
        assert got[f"{name}@{k}"] == pytest.approx(value, rel=1e-12), name


def test_invariants_on_random_data():
    recos, test, train = random_case(11)
    table = values(evaluate(frame(recos), frame(test, ("user_id", "item_id")),
                            train=frame(train, ("user_id", "item_id")), k=(5, 10, 20)))
    for name, v in table.items():
        # coverage may exceed 1 here: the lists hold items outside the train catalogue (RecTools divides anyway)
        if not name.startswith(("dcg", "novelty", "avg_rec", "coverage")):
            assert 0.0 <= v <= 1.0 + 1e-12, name
    for name in ("hit_rate", "recall", "dcg", "mrr", "coverage"):
        assert table[f"{name}@5"] <= table[f"{name}@10"] <= table[f"{name}@20"]


def test_rows_beyond_k_and_extra_columns_are_ignored():
    recos = RECOS.with_columns(pl.lit(1.0).alias("score"))
    longer = pl.concat([recos, frame([(1, "e", 5)]).with_columns(pl.lit(0.0).alias("score"))])
    assert values(evaluate(longer, TEST, k=4)) == values(evaluate(recos, TEST, k=4))


def test_bootstrap_is_seeded_and_brackets_the_value():
    recos, test, train = random_case(3, n_users=200)
    args = (frame(recos), frame(test, ("user_id", "item_id")))
    a = evaluate(*args, train=frame(train, ("user_id", "item_id")), k=10, bootstrap=300, seed=1)
    b = evaluate(*args, train=frame(train, ("user_id", "item_id")), k=10, bootstrap=300, seed=1)
    c = evaluate(*args, train=frame(train, ("user_id", "item_id")), k=10, bootstrap=300, seed=2)
    assert a.equals(b) and not a.equals(c)
    per_user = a.filter(pl.col("metric") != "coverage")
    assert (per_user["ci_low"] <= per_user["value"]).all() and (per_user["value"] <= per_user["ci_high"]).all()
    assert (per_user["ci_high"] - per_user["ci_low"] > 0).all()
    assert a.filter(pl.col("metric") == "coverage")["ci_low"].is_nan().all()


def test_bootstrap_interval_matches_a_direct_resampling():
    rng = np.random.default_rng(0)
    per_user = rng.random(50)
    recos = frame([(u, 1, 1) for u in range(50)])
    # recall of user u is 1/n_rel(u): build test sets so that the per-user values are known
    n_rel = rng.integers(1, 5, 50)
    test = frame([(u, 1 if j == 0 else 100 + j, ) for u in range(50) for j in range(n_rel[u])], ("user_id", "item_id"))
    per_user = 1 / n_rel
    table = evaluate(recos, test, k=1, metrics=["recall"], bootstrap=2000, seed=5)
    means = per_user[np.random.default_rng(99).integers(0, 50, (2000, 50))].mean(axis=1)
    low, high = np.quantile(means, [0.025, 0.975])
    assert table["value"].item() == pytest.approx(per_user.mean())
    assert table["ci_low"].item() == pytest.approx(low, abs=0.02)
    assert table["ci_high"].item() == pytest.approx(high, abs=0.02)


def test_to_wide_formats_a_results_row():
    table = evaluate(RECOS, TEST, k=(1, 4), metrics=["ndcg", "recall"]).with_columns(pl.lit("m").alias("model"))
    wide = to_wide(table, digits=3)
    assert wide.columns == ["model", "ndcg@1", "ndcg@4", "recall@1", "recall@4"]  # the order asked for
    boot = evaluate(RECOS, TEST, k=4, metrics=["recall"], bootstrap=50)
    cell = to_wide(boot, digits=3, with_ci=True)["recall@4"].item()
    assert cell.startswith("0.556 [") and cell.endswith("]")


def test_errors_say_what_is_wrong():
    with pytest.raises(SchemaError, match=r"recos is missing column\(s\) \['rank'\]"):
        evaluate(RECOS.drop("rank"), TEST)
    with pytest.raises(SchemaError, match="test interactions is missing"):
        evaluate(RECOS, TEST.rename({"item_id": "item"}))
    with pytest.raises(SchemaError, match="needs train="):
        evaluate(RECOS, TEST, metrics=["novelty"])
    with pytest.raises(SchemaError, match="needs ref_recos="):
        evaluate(RECOS, TEST, metrics=["intersection"])
    with pytest.raises(ValueError, match="unknown metric 'ndgc'"):
        evaluate(RECOS, TEST, metrics=["ndgc"])
    with pytest.raises(SchemaError, match="recommended twice"):
        evaluate(pl.concat([RECOS, RECOS]), TEST)
    with pytest.raises(SchemaError, match="ranks start at 1"):
        evaluate(RECOS.with_columns(pl.col("rank") - 1), TEST)
    with pytest.raises(SchemaError, match="must be integer"):
        evaluate(RECOS.with_columns(pl.col("rank").cast(pl.Float64)), TEST)
    with pytest.raises(ValueError, match="positive integers"):
        evaluate(RECOS, TEST, k=0)


def test_default_metric_set_depends_on_inputs():
    assert set(values(evaluate(RECOS, TEST, k=1))) == {f"{m}@1" for m in ACCURACY}
    train = frame([(1, "a"), (2, "x")], ("user_id", "item_id"))
    with_train = {name.split("@")[0] for name in values(evaluate(RECOS, TEST, train=train, k=1))}
    assert with_train == set(METRICS) - {"intersection", "ndcg_achievable", "covered_users"}


def test_per_user_metrics_shapes():
    train = frame([(1, "a"), (2, "x")], ("user_id", "item_id"))
    tables = per_user_metrics(RECOS, TEST, train=train, k=2)
    assert tables["ndcg"]["user_id"].to_list() == [1, 2, 3]        # test users
    assert tables["novelty"]["user_id"].to_list() == [1, 2]        # recommended users
    assert tables["coverage"].height == 1


def test_per_user_tables_keep_the_id_type():
    big = 2**62 + 7  # would not survive a round trip through float64
    recos = pl.DataFrame({"user_id": [big], "item_id": [1], "rank": [1]})
    test = pl.DataFrame({"user_id": [big, big + 2], "item_id": [1, 2]})
    table = per_user_metrics(recos, test, k=1, metrics=["ndcg"])["ndcg"]
    assert table.schema["user_id"] == pl.Int64 and table["user_id"].to_list() == [big, big + 2]
