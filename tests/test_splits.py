"""Splits and filters: invariants on the real ML-100K and hand-made cases."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import polars as pl
import pytest

from seminar_lib.datasets import make_interactions
from seminar_lib.errors import EmptySplitError, SchemaError, UnknownUsersError
from seminar_lib.splits import IdEncoder, filter_warm, global_time_split, k_core, last_n_days_split, leave_one_out


def events(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    return make_interactions(pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row"))


def pairs(df: pl.DataFrame) -> set[tuple]:
    return set(df.select("user_id", "item_id", "timestamp").iter_rows())


def test_global_time_split_has_no_leakage_and_partitions_the_data(ml100k):
    inter = ml100k.interactions
    split = global_time_split(inter, valid=0.1, test=0.1)
    assert split.train.height + split.valid.height + split.test.height == inter.height
    assert split.train["timestamp"].max() < split.valid["timestamp"].min()
    assert split.valid["timestamp"].max() < split.test["timestamp"].min()
    assert split.train.height == pytest.approx(0.8 * inter.height, abs=10)
    assert split.test.height == pytest.approx(0.1 * inter.height, abs=10)
    assert split.info["test_start"] == split.test["timestamp"].min()


def test_global_time_split_keeps_equal_timestamps_together():
    df = events([(1, 1, 1), (1, 2, 2), (2, 1, 2), (2, 3, 2), (3, 1, 3)])
    split = global_time_split(df, valid=0.0, test=0.5)
    assert split.train["timestamp"].dt.epoch("s").to_list() == [1]
    assert sorted(split.test["timestamp"].dt.epoch("s").to_list()) == [2, 2, 2, 3]
    assert split.valid.is_empty()


def test_warm_filter_keeps_only_known_users_and_items(ml100k):
    split = global_time_split(ml100k.interactions).warm()
    train_users, train_items = set(split.train["user_id"]), set(split.train["item_id"])
    for part in (split.valid, split.test):
        assert set(part["user_id"]) <= train_users and set(part["item_id"]) <= train_items
    summary = split.summary()
    assert summary["users"].to_list() == summary["users in train"].to_list()


def test_warm_users_only_keeps_cold_items():
    train = events([(1, 1, 1), (2, 2, 1)])
    test = events([(1, 3, 5), (3, 1, 5), (2, 2, 5)])
    assert filter_warm(test, train, items=False)["item_id"].to_list() == [3, 2]
    assert filter_warm(test, train)["item_id"].to_list() == [2]
    with pytest.raises(EmptySplitError, match="no row is warm"):
        filter_warm(events([(9, 9, 9)]), train)


def test_k_core_reaches_a_fixed_point(ml100k):
    core = k_core(ml100k.interactions, 50)
    assert core.group_by("user_id").len()["len"].min() >= 50
    assert core.group_by("item_id").len()["len"].min() >= 50
    assert k_core(core, 50).height == core.height  # nothing more to remove


def test_k_core_iterates():
    # one pass keeps user 3 and item 3; iterating removes the whole chain 4 → item 3 → user 3
    df = events([(1, 1, 1), (1, 2, 1), (2, 1, 1), (2, 2, 1), (3, 2, 1), (3, 3, 1), (4, 3, 1)])
    one_pass = df.filter((pl.len().over("user_id") >= 2) & (pl.len().over("item_id") >= 2))
    assert 3 in one_pass["user_id"].to_list()
    core = k_core(df, 2)
    assert sorted(core["user_id"].unique().to_list()) == [1, 2]
    assert sorted(core["item_id"].unique().to_list()) == [1, 2]
    assert k_core(core, 2).equals(core)
    assert k_core(df, user_k=1, item_k=2).height == df.height  # every item has two users
    with pytest.raises(EmptySplitError, match="removed every interaction"):
        k_core(df, 10)


def test_leave_one_out_holds_out_the_last_events(ml100k):
    split = leave_one_out(ml100k.interactions, valid=True)
    assert split.test.height == 943 and split.valid.height == 943
    last = (ml100k.interactions.sort("user_id", "timestamp", "item_id").group_by("user_id", maintain_order=True)
            .last().select("user_id", "item_id"))
    assert split.test.select("user_id", "item_id").sort("user_id").equals(last.sort("user_id"))
    joined = split.train.group_by("user_id").agg(pl.col("timestamp").max()).join(
        split.valid.select("user_id", pl.col("timestamp").alias("t_valid")), on="user_id")
    assert (joined["timestamp"] <= joined["t_valid"]).all()
    assert split.train.height + 2 * 943 == 100_000


def test_leave_one_out_keeps_short_users_in_train():
    df = events([(1, 1, 1), (1, 2, 2), (1, 3, 3), (2, 1, 1)])
    split = leave_one_out(df, valid=True)
    assert split.test.rows() == [(1, 3, datetime(1970, 1, 1, 0, 0, 3, tzinfo=timezone.utc), 1.0)]
    assert pairs(split.train) == {(1, 1, split.train["timestamp"][0]), (2, 1, split.train["timestamp"][1])}


def test_last_n_days_split():
    day = 86400
    df = events([(1, 1, 0), (1, 2, 10 * day), (2, 1, 12 * day), (2, 3, 13 * day), (3, 4, 14 * day)])
    split = last_n_days_split(df, test_days=2, valid_days=3)
    assert split.test["item_id"].to_list() == [3, 4]  # after day 12
    assert split.valid["item_id"].to_list() == [2, 1]  # (day 9, day 12]
    assert split.train["item_id"].to_list() == [1]


def test_splits_reject_empty_and_wrong_input():
    with pytest.raises(EmptySplitError, match="empty"):
        global_time_split(events([(1, 1, 1)]).clear())
    with pytest.raises(SchemaError, match="missing column"):
        global_time_split(pl.DataFrame({"user_id": [1], "item_id": [1]}))
    with pytest.raises(ValueError, match="valid \\+ test < 1"):
        global_time_split(events([(1, 1, 1)]), valid=0.5, test=0.5)
    with pytest.raises(EmptySplitError, match="train part is empty"):
        global_time_split(events([(1, 1, 1), (2, 2, 1)]))


def test_id_encoder_round_trip(ml100k):
    users = ml100k.interactions["user_id"]
    enc = IdEncoder.fit(users)
    codes = enc.transform(users)
    assert codes.min() == 0 and codes.max() == len(enc) - 1 == 942
    assert enc.inverse(codes.to_numpy()).equals(users.alias("id"))
    assert 196 in enc and 10_000 not in enc


def test_id_encoder_unknown_ids():
    enc = IdEncoder.fit(["b", "a", "c"])
    assert enc.transform(pl.Series(["c", "a"])).to_list() == [2, 0]
    assert enc.transform(pl.Series(["a", "z"]), unknown="null").to_list() == [0, None]
    with pytest.raises(UnknownUsersError, match="1 unknown id"):
        enc.transform(pl.Series(["a", "z"]))
    assert enc.inverse(np.array([1, 1])).to_list() == ["b", "b"]


def test_fit_data_is_train_for_tuning_and_train_plus_valid_for_test(ml100k):
    split = global_time_split(ml100k.interactions)
    assert split.fit_data("valid").equals(split.train)
    assert split.fit_data("test").height == split.train.height + split.valid.height
    with pytest.raises(ValueError, match="'valid' or 'test'"):
        split.fit_data("train")


def test_time_range_folds_walk_forward_without_leakage(ml100k):
    from seminar_lib.splits import time_range_folds

    folds = time_range_folds(ml100k.interactions, n_folds=3, test_days=7)
    assert [f.info["fold"] for f in folds] == [0, 1, 2]
    for a, b in zip(folds, folds[1:]):
        assert a.info["test_end"] == b.info["test_start"]        # consecutive weeks
        assert a.train.height < b.train.height                   # later folds see more
    for fold in folds:
        assert fold.train["timestamp"].max() <= fold.info["test_start"] < fold.test["timestamp"].min()
        assert fold.valid.is_empty()
    assert folds[-1].test["timestamp"].max() == ml100k.interactions["timestamp"].max()
    with pytest.raises(EmptySplitError, match="empty"):
        time_range_folds(ml100k.interactions, n_folds=40, test_days=7)
