"""VectorRecommender: what every embedding model derives from its two hooks (ALS, MF, DSSM, SASRec)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch

from seminar_lib.models import ALS, DSSM, MatrixFactorization, SASRec
from seminar_lib.models.vector import VectorRecommender
from seminar_lib.splits import global_time_split


@pytest.fixture(scope="module")
def train(synthetic):
    return global_time_split(synthetic.interactions).train


def models():
    quiet = dict(seed=0, log_every=None)
    return [ALS(factors=8, iterations=3), MatrixFactorization("bpr", factors=8, epochs=2, **quiet, device="cpu"),
            DSSM(epochs=1, batch_size=512, out_dim=16, embedding_dim=16, hidden=(32,), **quiet, device="cpu"),
            SASRec("softmax", epochs=1, dim=16, heads=1, layers=1, max_len=20, **quiet, device="cpu")]


@pytest.mark.parametrize("model", models(), ids=lambda m: type(m).__name__)
def test_recommend_ranks_by_the_dot_product_of_the_embeddings(model, train):
    assert isinstance(model, VectorRecommender)
    with pytest.raises(RuntimeError, match="not fitted"):
        model.item_embeddings()
    model.fit(train)
    users, items = model.user_embeddings(), model.item_embeddings()
    assert users.shape[0] == len(model.users_) and items.shape[0] == len(model.items_)
    recos = model.recommend(model.users_.ids.head(5), k=3, filter_viewed=False)
    scores = model.score_pairs(recos["user_id"], recos["item_id"])
    np.testing.assert_allclose(scores, recos["score"].to_numpy(), rtol=1e-5, atol=1e-5)  # pairs = ranked scores
    if not isinstance(model, MatrixFactorization):  # MF adds its item bias on top of the dot product
        u = torch.tensor(model.users_.transform(recos["user_id"]).to_numpy())
        i = torch.tensor(model.items_.transform(recos["item_id"]).to_numpy())
        np.testing.assert_allclose((users[u] * items[i]).sum(-1).double().cpu().numpy(), scores, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="as many users as items"):
        model.score_pairs(recos["user_id"].head(2), recos["item_id"].head(1))


def test_mf_scores_are_the_dot_product_plus_the_item_bias(train):
    model = MatrixFactorization("bpr", factors=8, epochs=2, seed=0, log_every=None, device="cpu").fit(train)
    scores = model.user_embeddings() @ model.item_embeddings().T + model.net_.item_bias.detach()
    recos = model.recommend(model.users_.ids.head(3), k=1, filter_viewed=False)
    best = scores[torch.tensor(model.users_.transform(recos["user_id"]).to_numpy())].max(dim=1).values
    np.testing.assert_allclose(best.numpy(), recos["score"].to_numpy(), rtol=1e-6)


def test_every_torch_model_keeps_its_training_result(train, synthetic):
    valid = global_time_split(synthetic.interactions).valid
    sasrec = SASRec("softmax", epochs=2, dim=16, heads=1, layers=1, max_len=20, seed=0, log_every=None,
                    device="cpu").fit(train, valid)
    mf = MatrixFactorization("bpr", factors=8, epochs=2, seed=0, log_every=1, device="cpu").fit(train, valid=valid)
    for model in (sasrec, mf):
        assert model.best_epoch_ == model.train_result_.kept_epoch and 1 <= model.best_epoch_ <= 2
        assert model.history_.height == 2 and len(model.epoch_seconds_) == 2
    with pytest.raises(ValueError, match="missing column"):
        MatrixFactorization(epochs=1, log_every=None).fit(train, valid=pl.DataFrame({"user_id": [1]}))
