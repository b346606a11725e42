"""SASRec/BERT4Rec item features go through the course's one tokeniser (features.FeatureEncoder +
token_bags) and get the token ids the models' own tokeniser gave before it was replaced."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from seminar_lib.features import FeatureEncoder, category, multi, token_bags
from seminar_lib.models.sequential import BERT4Rec, SASRec


def earlier_tokeniser(table: pl.DataFrame, columns: tuple[str, ...], catalogue: pl.Series):
    """The sequential models' former ``_encode_item_features`` (before it used FeatureEncoder), as the oracle:
    ``column=value`` tokens, ids in the sorted order of the names, CSR per catalogue item."""
    position = {item: r for r, item in enumerate(catalogue.to_list())}
    table = table.filter(pl.col("item_id").is_in(catalogue.implode()))
    pieces = []
    for column in columns:
        col = table.select("item_id", pl.col(column).alias("value"))
        if isinstance(col.schema["value"], pl.List):
            col = col.explode("value")
        pieces.append(col.drop_nulls("value").select(
            "item_id", (pl.lit(f"{column}=") + pl.col("value").cast(pl.String)).alias("token")))
    tokens = pl.concat(pieces).unique(maintain_order=True)
    names = sorted(tokens["token"].unique().to_list())
    item = np.array([position[i] for i in tokens["item_id"].to_list()], dtype=np.int64)
    value = tokens["token"].replace_strict(names, list(range(len(names))), return_dtype=pl.Int64).to_numpy()
    order = np.lexsort((value, item))
    counts = np.bincount(item, minlength=len(catalogue))
    return torch.from_numpy(np.concatenate([[0], np.cumsum(counts)])), torch.from_numpy(value[order]), names


@pytest.mark.parametrize("columns", [("genres",), ("genres", "year"), ("year",)])
@pytest.mark.parametrize("model_class", [SASRec, BERT4Rec])
def test_ml100k_token_ids_are_the_earlier_ones(ml100k, columns, model_class):
    interactions = ml100k.interactions.sort("timestamp").head(20_000)  # a catalogue without every item
    model = model_class("softmax", epochs=0, item_features=columns, max_len=8, dim=8, layers=1, log_every=None,
                        device="cpu").fit(interactions, item_features=ml100k.items)
    offsets, values, names = model._encode_item_features(ml100k.items)
    want_offsets, want_values, want_names = earlier_tokeniser(ml100k.items, columns, model.items_.ids)
    assert names == want_names == model.feature_names_
    assert torch.equal(offsets, want_offsets) and torch.equal(values, want_values)
    assert offsets.dtype == values.dtype == torch.int64
    assert model.net_.items.features.weight.shape[0] == len(names)  # one embedding row a value, no <unknown>


def test_synthetic_category_token_ids_are_the_earlier_ones(synthetic):
    model = SASRec("softmax", epochs=0, item_features=("category",), max_len=8, dim=8, layers=1, log_every=None,
                   device="cpu").fit(synthetic.interactions, item_features=synthetic.items)
    got = model._encode_item_features(synthetic.items)
    want = earlier_tokeniser(synthetic.items, ("category",), model.items_.ids)
    assert got[2] == want[2] and all(torch.equal(a, b) for a, b in zip(got[:2], want[:2]))


def test_token_bags_drop_unknown_and_renumber_in_name_order():
    table = pl.DataFrame({"item_id": [1, 2, 3], "genres": [["b", "a"], [], None], "kind": ["x", None, "y"]})
    encoder = FeatureEncoder([multi("genres"), category("kind")], key="item_id").fit(table)
    offsets, values, names = token_bags(encoder, [3, 1, 2, 9])  # 9: not in the table
    assert names == ["genres=a", "genres=b", "kind=x", "kind=y"]
    assert offsets.tolist() == [0, 1, 4, 4, 4] and values.tolist() == [3, 0, 1, 2]
