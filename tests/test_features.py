"""Feature encoding (seminar_lib.features): by id, unknown values, buckets, multi-hot, presets."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from seminar_lib.errors import SchemaError
from seminar_lib.features import (UNKNOWN, EncodedFeatures, FeatureEncoder, FeaturePreset, binned, buckets,
                                  category, embedding_bag, get_preset, multi, preset_names,
                                  unknown_codes)

USERS = pl.DataFrame({
    "user_id": [10, 20, 30, 40, 50],
    "age": [17, 24, 35, 61, None],
    "gender": ["F", "M", "M", None, "F"],
    "occupation": ["student", "writer", "doctor", "writer", "artist"],
})
ITEMS = pl.DataFrame({
    "item_id": [1, 2, 3, 4],
    "genres": [["Drama", "Comedy"], ["Comedy"], [], None],
    "year": [1995, 1987, None, 2001],
})
USER_FEATURES = (buckets("age", (18, 25, 35, 45, 50, 56)), category("gender"), category("occupation"))


def tokens(x: EncodedFeatures, row: int) -> list[str]:
    """The token names of one encoded row (padding left out), in code order."""
    return [x.names[c] for c, w in zip(x.index[row].tolist(), x.weight[row].tolist()) if c != x.pad_index and w > 0]


# ------------------------------------------------------------------------------------- by id
def test_rows_follow_the_requested_ids_whatever_the_table_order():
    enc = FeatureEncoder(USER_FEATURES, key="user_id").fit(USERS)
    ids = pl.Series([40, 10, 30, 20, 50])
    expected = enc.encode(ids)
    assert tokens(expected, 0) == ["age=>= 56", f"gender={UNKNOWN}", "occupation=writer"]
    assert tokens(expected, 1) == ["age=< 18", "gender=F", "occupation=student"]
    for seed in range(5):  # the same table in another row order: identical encodings, identical vocabularies
        shuffled = USERS.sample(fraction=1.0, shuffle=True, seed=seed)
        other = FeatureEncoder(USER_FEATURES, key="user_id").fit(shuffled)
        assert other.names == enc.names
        x = other.encode(ids)
        assert torch.equal(x.index, expected.index) and torch.equal(x.weight, expected.weight)


def test_row_position_lookup_is_the_seed_bug():
    # The seed indexed the (unsorted) feature table by the dense user code: user k got row k's features.
    table = USERS.sample(fraction=1.0, shuffle=True, seed=3)
    assert table["user_id"].to_list() != sorted(table["user_id"].to_list())
    enc = FeatureEncoder(USER_FEATURES, key="user_id").fit(table)
    dense_ids = pl.Series(sorted(table["user_id"].to_list()))  # what the model's user index 0..n−1 means
    by_id = enc.encode(dense_ids).dense()
    by_position = enc.encode(table["user_id"]).dense()  # "row k of the file" for dense code k
    assert not torch.equal(by_id, by_position)
    for k, user in enumerate(dense_ids.to_list()):  # by id: row k really is user k's
        row = table.filter(pl.col("user_id") == user).row(0, named=True)
        assert f"occupation={row['occupation']}" in tokens(enc.encode(dense_ids), k)


def test_unknown_values_missing_ids_nulls_and_empty_lists_get_code_zero():
    enc = FeatureEncoder(USER_FEATURES, key="user_id").fit(USERS, ids=[10, 20])  # vocabulary from two users
    assert enc.names == ["age=<unknown>", "age=< 18", "age=[18, 25)", "gender=<unknown>", "gender=F", "gender=M",
                         "occupation=<unknown>", "occupation=student", "occupation=writer"]
    x = enc.encode([30, 50, 99, 20])
    zero = unknown_codes(enc)
    assert zero == [0, 3, 6]
    assert x.index[0].tolist() == [0, 5, 6]      # 35 → unseen bucket; M known; doctor unseen
    assert x.index[1].tolist() == [0, 4, 6]      # null age → unknown; F; artist unseen
    assert x.index[2].tolist() == zero           # id not in the table: everything unknown
    assert x.missing.tolist() == [False, False, True, False]
    assert tokens(x, 3) == ["age=[18, 25)", "gender=M", "occupation=writer"]
    items = FeatureEncoder([multi("genres"), binned("year", 10, name="decade")], key="item_id").fit(ITEMS)
    y = items.encode([3, 4, 1])
    assert tokens(y, 0) == [f"genres={UNKNOWN}", f"decade={UNKNOWN}"]  # empty list, null year
    assert tokens(y, 1) == [f"genres={UNKNOWN}", "decade=2000"]        # null list
    assert tokens(y, 2) == ["genres=Comedy", "genres=Drama", "decade=1990"]


def test_buckets_binned_and_their_order():
    f = buckets("age", (18, 25, 35))
    assert f.values(pl.DataFrame({"age": [17, 18, 24, 25, 99, None]})).to_list() == \
        ["< 18", "[18, 25)", "[18, 25)", "[25, 35)", ">= 35", None]
    assert binned("year", 10).values(pl.DataFrame({"year": [1999, 2000, 1905]})).to_list() == ["1990", "2000", "1900"]
    enc = FeatureEncoder([f], key="id").fit(pl.DataFrame({"id": [1, 2, 3], "age": [40, 10, 20]}))
    assert enc.names == ["age=<unknown>", "age=< 18", "age=[18, 25)", "age=>= 35"]  # numeric order, not text order
    dec = FeatureEncoder([binned("year", 10)], key="id").fit(pl.DataFrame({"id": [1, 2], "year": [1995, 850]}))
    assert dec.names == ["year=<unknown>", "year=850", "year=1990"]
    with pytest.raises(ValueError, match="increasing"):
        buckets("age", (30, 20))
    with pytest.raises(ValueError, match="width"):
        binned("year", 0)


def test_multi_hot_lists_separators_duplicates_and_mean_weights():
    table = pl.DataFrame({"item_id": [1, 2], "genres": ["драмы, комедии", "комедии,комедии"]})
    with pytest.raises(SchemaError, match="separator"):
        FeatureEncoder([multi("genres")], key="item_id").fit(table)
    enc = FeatureEncoder([multi("genres", separator=",")], key="item_id").fit(table)
    assert enc.names == ["genres=<unknown>", "genres=драмы", "genres=комедии"]
    x = enc.encode([1, 2])
    assert x.dense().tolist() == [[0.0, 1.0, 1.0], [0.0, 0.0, 1.0]]  # a value listed twice counts once
    mean = FeatureEncoder([multi("genres", separator=",")], key="item_id", lists="mean").fit(table).encode([1, 2])
    assert mean.dense().tolist() == [[0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]


def test_dense_one_hot_equals_embedding_bag_of_the_index_form():
    enc = FeatureEncoder([multi("genres"), binned("year", 10)], key="item_id").fit(ITEMS)
    x = enc.encode([4, 1, 2, 3, 77])
    assert x.index.shape[0] == 5 and x.dense().shape == (5, enc.size)
    assert x.dense().sum(1).tolist() == (x.weight.sum(1)).tolist()
    bag = embedding_bag(x.size, 6, generator=torch.Generator().manual_seed(0), unknown_codes=unknown_codes(enc))
    via_bag = bag(x.index, per_sample_weights=x.weight)
    via_matrix = x.dense() @ bag.weight[: x.size]
    assert torch.allclose(via_bag, via_matrix, atol=1e-6)
    assert bag.weight[unknown_codes(enc)].abs().sum() == 0 and bag.weight[x.pad_index].abs().sum() == 0
    batch = x[torch.tensor([1, 0])]
    assert torch.equal(batch.index, x.index[[1, 0]]) and len(batch) == 2


def test_frame_has_one_column_per_token_aligned_by_id():
    enc = FeatureEncoder(USER_FEATURES, key="user_id").fit(USERS)
    frame = enc.frame([20, 10])
    assert frame.columns == ["user_id", *enc.names]
    assert frame["user_id"].to_list() == [20, 10]
    assert frame.row(0, named=True)["occupation=writer"] == 1.0 and frame.row(1, named=True)["gender=F"] == 1.0


# -------------------------------------------------------------------------------------- presets
def test_presets_on_ml100k(ml100k):
    preset = get_preset("ml-100k")
    users = FeatureEncoder(preset.users, key="user_id").fit(ml100k.users)
    items = FeatureEncoder(preset.items, key="item_id").fit(ml100k.items)
    ux, ix = users.encode(ml100k.users["user_id"]), items.encode(ml100k.items["item_id"])
    assert ux.index.shape == (943, 3) and not ux.missing.any()
    assert ux.dense().sum(1).eq(3).all()  # exactly one token per user feature
    assert {n.split("=")[0] for n in users.names} == {"age", "gender", "occupation"}
    assert ix.index.shape[0] == 1682
    genre_flags = ml100k.items.select(pl.col("^genre_.*$")).to_numpy().sum(1)
    genre_tokens = ix.dense()[:, [i for i, n in enumerate(items.names) if n.startswith("genres=") and UNKNOWN not in n]]
    assert np.array_equal(genre_tokens.sum(1).numpy(), genre_flags)  # multi-hot = the file's 0/1 genre flags
    assert "decade=1990" in items.names


def test_presets_on_synthetic_and_kion_shaped_tables(synthetic):
    preset = get_preset("synthetic")
    assert FeatureEncoder(preset.users, key="user_id").fit(synthetic.users).encode([1, 2]).index.shape == (2, 2)
    assert FeatureEncoder(preset.items, key="item_id").fit(synthetic.items).encode([1]).index.shape == (1, 2)
    kion_users = pl.DataFrame({"user_id": [973171, 962099], "age": ["age_25_34", "age_18_24"],
                               "income": ["income_60_90", "income_20_40"], "sex": ["М", "Ж"], "kids_flg": [1, 0]})
    kion_items = pl.DataFrame({"item_id": [10711, 2508], "content_type": ["film", "series"],
                               "genres": ["драмы, зарубежные", "детективы"], "age_rating": [16.0, None],
                               "for_kids": [None, 0.0], "countries": ["Испания", "США, Великобритания"],
                               "release_year": [2002.0, 2014.0]})
    kion = get_preset("kion")
    u = FeatureEncoder(kion.users, key="user_id").fit(kion_users).encode([962099])
    assert tokens(u, 0) == ["age=age_18_24", "income=income_20_40", "sex=Ж", "kids_flg=0"]
    i = FeatureEncoder(kion.items, key="item_id").fit(kion_items).encode([2508])
    assert tokens(i, 0) == ["content_type=series", "genres=детективы", f"age_rating={UNKNOWN}", "for_kids=0.0",
                            "countries=Великобритания", "countries=США", "decade=2010"]


def test_presets_are_the_registry_entries():
    from seminar_lib.datasets import get_spec

    assert preset_names() == ["kion", "ml-100k", "ml-1m", "synthetic"]  # ozon has no features preset
    for name in preset_names():
        assert get_preset(name) is get_spec(name).features


def test_errors():
    with pytest.raises(KeyError, match="unknown feature preset 'ml-10m'"):
        get_preset("ml-10m")
    with pytest.raises(KeyError, match="unknown feature preset 'ozon'"):  # registered, without a preset
        get_preset("ozon")
    custom = FeaturePreset(users=(category("gender"),))
    assert get_preset(custom) is custom
    with pytest.raises(SchemaError, match="missing column"):
        FeatureEncoder([category("zip")], key="user_id").fit(USERS)
    with pytest.raises(SchemaError, match="unique"):
        FeatureEncoder([category("gender")], key="user_id").fit(pl.concat([USERS, USERS]))
    with pytest.raises(RuntimeError, match="not fitted"):
        FeatureEncoder([category("gender")], key="user_id").encode([10])
    with pytest.raises(SchemaError, match="numeric"):
        FeatureEncoder([buckets("gender", (1, 2))], key="user_id").fit(USERS)
    with pytest.raises(SchemaError, match="type"):
        FeatureEncoder([category("gender")], key="user_id").fit(USERS).encode(["ten"])
    with pytest.raises(ValueError, match="distinct"):
        FeatureEncoder([category("gender"), category("gender")], key="user_id")
    with pytest.raises(ValueError, match="at least one"):
        FeatureEncoder([], key="user_id")
