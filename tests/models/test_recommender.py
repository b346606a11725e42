"""The recommender interface (with TopPopular and a tiny embedding model), top-k ties, fit_and_evaluate."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import scipy.sparse as sp
import torch

from seminar_lib.datasets import make_interactions
from seminar_lib.errors import SchemaError, UnknownUsersError
from seminar_lib.evaluation import fit_and_evaluate, results_table
from seminar_lib.models import Recommender, TopPopular
from seminar_lib.models.base import EncodedInteractions, UserBatch
from seminar_lib.splits import global_time_split
from seminar_lib.topk import topk_deterministic


def interactions(rows):
    return make_interactions(pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row"))


# users 1..4; item popularity (distinct users): a:3, b:2, c:2, d:1 — b and c tie
TRAIN = interactions([("u1", "a", 1), ("u1", "b", 2), ("u2", "a", 3), ("u2", "c", 4), ("u3", "a", 5),
                      ("u3", "b", 6), ("u4", "c", 7), ("u4", "d", 8), ("u4", "d", 9)])


def test_top_popular_exact_frame():
    model = TopPopular().fit(TRAIN)
    recos = model.recommend(["u1", "u4"], k=2)
    assert recos.rows() == [("u1", "c", 2.0, 1), ("u1", "d", 1.0, 2),   # a, b seen
                            ("u4", "a", 3.0, 1), ("u4", "b", 2.0, 2)]   # repeat d counted once
    assert recos.columns == ["user_id", "item_id", "score", "rank"]
    assert model.recommend(["u1"], k=3, filter_viewed=False)["item_id"].to_list() == ["a", "b", "c"]  # tie b/c → b


def test_output_is_sorted_by_user_then_rank_and_ignores_duplicates():
    recos = TopPopular().fit(TRAIN).recommend(["u3", "u1", "u3"], k=2)
    assert recos["user_id"].to_list() == ["u1", "u1", "u3", "u3"]
    assert recos["rank"].to_list() == [1, 2, 1, 2]


def test_filter_viewed_never_returns_seen_items(synthetic):
    train = synthetic.interactions
    recos = TopPopular().fit(train).recommend(train["user_id"].unique(), k=20)
    assert recos.join(train, on=["user_id", "item_id"], how="semi").is_empty()
    assert recos.group_by("user_id").len()["len"].min() == 20


def test_short_lists_when_few_items_are_unseen():
    recos = TopPopular().fit(TRAIN).recommend(["u4"], k=10)
    assert recos["item_id"].to_list() == ["a", "b"]  # c, d seen; nothing padded with seen items


def test_top_popular_serves_cold_users():
    recos = TopPopular().fit(TRAIN).recommend(["new"], k=1)
    assert recos.rows() == [("new", "a", 3.0, 1)]


class ItemVectors(Recommender):
    """A fixed-embedding model used to test the base class: score(u, i) = <user vector, item vector>."""

    scores_from_history = True

    def _fit(self, data: EncodedInteractions) -> None:
        gen = torch.Generator().manual_seed(0)
        self.emb = torch.randn(data.n_items, 3, generator=gen)

    def _score(self, batch: UserBatch) -> torch.Tensor:
        hist = torch.as_tensor(batch.history.toarray())
        return hist @ self.emb @ self.emb.T  # the user is the sum of its items

    def item_embeddings(self) -> torch.Tensor:
        return self.emb


def test_unknown_users_policy():
    model = ItemVectors().fit(TRAIN)
    with pytest.raises(UnknownUsersError, match=r"cannot score 1 user\(s\) unseen at fit, e.g. \['zz'\].*interactions="):
        model.recommend(["u1", "zz"], k=2)
    with pytest.warns(UserWarning, match="they are skipped"):
        recos = model.recommend(["u1", "zz"], k=2, on_unsupported_targets="warn")
    assert recos["user_id"].unique().to_list() == ["u1"]
    assert model.recommend(["zz"], k=2, on_unsupported_targets="ignore").is_empty()
    with pytest.raises(ValueError, match="on_unsupported_targets"):
        model.recommend(["u1"], on_unsupported_targets="skip")


def test_history_passed_at_recommend_time_serves_new_users():
    model = ItemVectors().fit(TRAIN)
    history = interactions([("zz", "a", 1), ("zz", "unknown-item", 2)])
    recos = model.recommend(["zz"], k=4, interactions=history)
    assert "a" not in recos["item_id"].to_list() and recos.height == 3
    # the same history gives the same list as a user known with that history
    same = model.recommend(["u3"], k=4, interactions=interactions([("u3", "a", 1)]))
    assert same["item_id"].to_list() == recos["item_id"].to_list()


def test_batching_does_not_change_results(synthetic):
    model = ItemVectors().fit(synthetic.interactions)
    users = synthetic.interactions["user_id"].unique()
    assert model.recommend(users, k=7, batch_size=13).equals(model.recommend(users, k=7, batch_size=1000))


def test_similar_items_by_cosine():
    model = ItemVectors().fit(TRAIN)
    sims = model.similar_items(["a"], k=3)
    emb = torch.nn.functional.normalize(model.emb, dim=-1)
    expected = (emb[1:] @ emb[0]).numpy()
    order = np.argsort(-expected)
    assert sims["similar_item_id"].to_list() == [["b", "c", "d"][i] for i in order]
    assert sims["score"].to_numpy() == pytest.approx(expected[order], rel=1e-5)
    with pytest.raises(NotImplementedError, match="no item embeddings"):
        TopPopular().fit(TRAIN).similar_items(["a"])


def test_errors():
    with pytest.raises(RuntimeError, match="not fitted"):
        TopPopular().recommend(["u1"])
    with pytest.raises(SchemaError, match="missing column"):
        TopPopular().fit(TRAIN.rename({"item_id": "movie"}))
    with pytest.raises(SchemaError, match="empty"):
        TopPopular().fit(TRAIN.clear())


@pytest.mark.parametrize("seed", range(20))
def test_topk_deterministic_matches_a_sort_with_tie_break(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, 4, (6, 15), generator=gen).float()
    scores[0, :] = 1.0  # a row of ties only
    scores[1, 3:] = -torch.inf  # a row with fewer than k finite scores (filtered items): −inf ties at the k-th place
    k = 1 + seed % 15
    values, indices = topk_deterministic(scores, k)
    for row in range(scores.shape[0]):
        expected = sorted(range(15), key=lambda i: (-scores[row, i].item(), i))[:k]
        assert indices[row].tolist() == expected
        assert values[row].tolist() == [scores[row, i].item() for i in expected]


def test_topk_rejects_nan_and_handles_k_beyond_items():
    with pytest.raises(ValueError, match="NaN"):
        topk_deterministic(torch.tensor([[1.0, float("nan")]]), 1)
    with pytest.raises(ValueError, match="NaN"):  # a NaN behind larger scores in another row is found too
        topk_deterministic(torch.tensor([[3.0, 2.0, 1.0], [5.0, 4.0, float("nan")]]), 1)
    values, indices = topk_deterministic(torch.tensor([[1.0, 2.0]]), 5)
    assert indices.tolist() == [[1, 0]]


def test_fit_and_evaluate_end_to_end(ml100k):
    split = global_time_split(ml100k.interactions)
    report = fit_and_evaluate(TopPopular(), split.train, split.test, k=(5, 10), bootstrap=100)
    assert report.metrics["model"].unique().to_list() == ["TopPopular"]
    assert report.metrics.filter(pl.col("metric") == "ndcg")["n_users"].to_list() == [69, 69]  # warm test users
    assert 0.05 < report.value("ndcg", 10) < 0.2
    assert report.recos["user_id"].n_unique() == 69
    table = results_table([report], metrics=["ndcg", "coverage"])
    assert table.columns == ["model", "ndcg@5", "ndcg@10", "coverage@5", "coverage@10", "fit_s", "recommend_s"]
    with pytest.raises(KeyError, match="mrr@3 was not computed"):
        report.value("mrr", 3)


def test_top_popular_beats_random_on_synthetic(synthetic):
    split = global_time_split(synthetic.interactions)
    pop = fit_and_evaluate(TopPopular(), split.train, split.test)
    rng = np.random.default_rng(0)
    users = pop.recos["user_id"].unique()
    items = split.train["item_id"].unique().to_numpy()
    random_recos = pl.DataFrame({
        "user_id": np.repeat(users.to_numpy(), 10),
        "item_id": np.concatenate([rng.choice(items, 10, replace=False) for _ in range(users.len())]),
        "rank": np.tile(np.arange(1, 11), users.len()),
    })
    from seminar_lib.metrics import ndcg
    warm = split.test.filter(pl.col("user_id").is_in(split.train["user_id"].implode()))
    assert pop.value("ndcg") > 1.5 * ndcg(random_recos, warm, k=10)


def test_grid_search_picks_the_best_setting_on_validation(ml100k):
    from seminar_lib.evaluation import grid_search
    from seminar_lib.models import EASE

    split = global_time_split(ml100k.interactions)
    best, table = grid_search(lambda regularization: EASE(regularization, device="cpu"),
                              {"regularization": [1.0, 200.0, 1e6]}, split.train, split.valid, metrics=["ndcg", "recall"])
    ndcg = table.filter(pl.col("metric") == "ndcg").sort("regularization")
    assert table.columns[:4] == ["regularization", "metric", "k", "value"]
    assert ndcg.height == 3 and best["regularization"] == ndcg.sort("value", descending=True)["regularization"][0]
    assert best == {"regularization": 200.0}  # λ = 1 overfits, λ = 10⁶ is popularity


def test_cross_validate_scores_every_model_on_every_fold(ml100k):
    from seminar_lib.evaluation import cross_validate
    from seminar_lib.models import EASE
    from seminar_lib.splits import time_range_folds

    folds = time_range_folds(ml100k.interactions, n_folds=2, test_days=14)
    table = cross_validate({"pop": TopPopular, "ease": lambda: EASE(200.0, device="cpu")}, folds, metrics=["ndcg"])
    assert table.select("fold", "model").unique().height == 4
    assert table.columns[:2] == ["fold", "model"] and {"fit_s", "recommend_s"} <= set(table.columns)
    pop = table.filter(pl.col("model") == "pop", pl.col("fold") == 0)["value"].item()
    direct = fit_and_evaluate(TopPopular(), folds[0].train, folds[0].test).value("ndcg")
    assert pop == pytest.approx(direct)


def test_real_vs_random_auc_matches_a_direct_count(synthetic):
    from seminar_lib.evaluation import real_vs_random
    from seminar_lib.models import MatrixFactorization

    split = global_time_split(synthetic.interactions)
    model = MatrixFactorization("bpr", factors=8, epochs=3, log_every=None, device="cpu").fit(split.fit_data("test"))
    sep = real_vs_random(model, split.test, seed=1)
    direct = (sep.real[:, None] > sep.random[None, :]).mean() + 0.5 * (sep.real[:, None] == sep.random[None, :]).mean()
    assert sep.auc == pytest.approx(direct) and 0.5 < sep.auc < 1.0
    assert len(sep.real) == len(sep.random) > 0
    with pytest.raises(TypeError, match="no score_pairs"):
        real_vs_random(TopPopular().fit(split.train), split.test)


# ------------------------------------------------------------------------------- sparse top-k
class _SparseScores(Recommender):
    """Scores given as a fixed sparse matrix (users × items), to test the sparse top-k path."""

    def __init__(self, scores: sp.csr_matrix) -> None:
        self.scores = scores

    def _fit(self, data: EncodedInteractions) -> None:
        pass

    def _score_sparse(self, batch: UserBatch) -> sp.csr_matrix:
        return self.scores[batch.user]


def test_sparse_top_k_equals_a_brute_force_ranking():
    # ties (scores from {1, 2, 3}), -inf candidates, users with fewer than k or no candidates, filter-viewed
    rng = np.random.default_rng(0)
    n_users, n_items, k = 40, 30, 5
    train = pl.DataFrame({"user_id": rng.integers(0, n_users, 300), "item_id": rng.integers(0, n_items, 300)})
    train = pl.concat([train, pl.DataFrame({"user_id": np.arange(n_users), "item_id": np.arange(n_users) % n_items})])
    train = train.unique(maintain_order=True).with_columns(pl.lit(1.0).alias("weight"))
    dense = rng.integers(1, 4, (n_users, n_items)).astype(float)
    dense[rng.random((n_users, n_items)) < 0.7] = 0.0           # not a candidate
    dense[rng.random((n_users, n_items)) < 0.05] = -np.inf      # a candidate that is never recommended
    dense[:3] = 0.0                                             # users without candidates
    model = _SparseScores(sp.csr_matrix(dense)).fit(train)
    users_idx = model.users_.transform(pl.Series(np.arange(n_users))).to_numpy()
    item_ids = model.items_.ids.to_list()
    seen = {(u, i) for u, i in train.select("user_id", "item_id").iter_rows()}
    for filter_viewed in (False, True):
        got = model.recommend(np.arange(n_users), k=k, filter_viewed=filter_viewed)
        expected = []
        for u in range(n_users):
            row = dense[users_idx[u]]
            cands = [(-row[j], item_ids[j], row[j]) for j in np.flatnonzero(row)
                     if np.isfinite(row[j]) and not (filter_viewed and (u, item_ids[j]) in seen)]
            expected += [(u, item, score, r + 1) for r, (_, item, score) in enumerate(sorted(cands)[:k])]
        assert got.rows() == expected
