"""Baselines: Random (uniform / popularity-weighted), PersonalTopPopular and the blend."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from seminar_lib.datasets import load, make_interactions
from seminar_lib.evaluation import fit_and_evaluate
from seminar_lib.models.baselines import PersonalThenGlobal, PersonalTopPopular, Random, TopPopular, keyed_uniform
from seminar_lib.splits import global_time_split


def interactions(rows):
    return make_interactions(pl.DataFrame(rows, schema=["user_id", "item_id", "timestamp"], orient="row"))


TRAIN = interactions([(1, 10, 1), (1, 10, 2), (1, 10, 3), (1, 20, 4), (2, 20, 5), (2, 30, 6), (3, 20, 7)])


def test_keyed_uniform_depends_only_on_seed_user_and_item():
    a = keyed_uniform(1, np.array([5, 7], dtype=np.uint64), 6)
    b = keyed_uniform(1, np.array([7], dtype=np.uint64), 6)
    assert np.array_equal(a[1], b[0])
    assert not np.array_equal(a, keyed_uniform(2, np.array([5, 7], dtype=np.uint64), 6))
    u = keyed_uniform(0, np.arange(2000, dtype=np.uint64), 500)
    assert 0 < u.min() and u.max() < 1 and abs(u.mean() - 0.5) < 0.002  # uniform on (0, 1)


def test_random_is_reproducible_per_user_whatever_the_batch(synthetic):
    model = Random(seed=3).fit(synthetic.interactions)
    users = synthetic.interactions["user_id"].unique()
    all_at_once = model.recommend(users, k=5)
    one = model.recommend([users[7]], k=5)
    assert one.equals(all_at_once.filter(pl.col("user_id") == users[7]))
    assert model.recommend(users, k=5, batch_size=17).equals(all_at_once)
    assert not Random(seed=4).fit(synthetic.interactions).recommend(users, k=5).equals(all_at_once)


def test_random_uniform_covers_the_catalogue_evenly(synthetic):
    model = Random(seed=0).fit(synthetic.interactions)
    recos = model.recommend(range(100_000, 104_000), k=10)  # cold users: nothing is filtered
    counts = recos.group_by("item_id").len()["len"].to_numpy()
    n_items = synthetic.interactions["item_id"].n_unique()
    assert len(counts) == n_items
    expected = 40_000 / n_items
    assert counts.std() < 3 * np.sqrt(expected)  # close to multinomial noise


def test_random_popularity_draws_in_proportion_to_popularity():
    train = interactions([(u, 1, 1) for u in range(60)] + [(u, 2, 1) for u in range(30)] + [(u, 3, 1) for u in range(10)])
    model = Random("popularity", seed=0).fit(train)
    first = model.recommend(range(1000, 21_000), k=1)
    shares = first.group_by("item_id").len().sort("item_id")["len"].to_numpy() / 20_000
    assert shares == pytest.approx([0.6, 0.3, 0.1], abs=0.015)
    # without replacement: the three items fill a list of three exactly once each
    lists = model.recommend(range(1000, 1100), k=3)
    assert (lists.group_by("user_id").agg(pl.col("item_id").n_unique())["item_id"] == 3).all()


def test_random_rejects_unknown_weighting():
    with pytest.raises(ValueError, match="'uniform' or 'popularity'"):
        Random("zipf")


def test_personal_top_popular_ranks_a_users_own_items_by_count():
    model = PersonalTopPopular().fit(TRAIN)
    recos = model.recommend([1, 2], k=5, filter_viewed=False)
    assert recos.rows() == [(1, 10, 3.0, 1), (1, 20, 1.0, 2), (2, 20, 1.0, 1), (2, 30, 1.0, 2)]
    assert model.recommend([1, 2], k=5).is_empty()  # every personal item is already seen


def test_personal_top_popular_uses_the_history_given_at_recommend_time():
    model = PersonalTopPopular().fit(TRAIN)
    history = interactions([(9, 30, 1), (9, 30, 2), (9, 10, 3)])
    assert model.recommend([9], k=3, filter_viewed=False, interactions=history)["item_id"].to_list() == [30, 10]


def test_blend_puts_personal_items_first_then_popular_ones():
    model = PersonalThenGlobal().fit(TRAIN)
    recos = model.recommend([2, 99], k=3, filter_viewed=False)
    # user 2: own items 20, 30 (one each; 20 is more popular), then the most popular remaining item 10
    assert recos.filter(pl.col("user_id") == 2)["item_id"].to_list() == [20, 30, 10]
    assert recos.filter(pl.col("user_id") == 99)["item_id"].to_list() == [20, 10, 30]  # a cold user: popularity


def test_on_repeat_consumption_personal_history_beats_popularity():
    data = load("synthetic", n_users=600, n_items=300, repeat_prob=0.5, seed=1)
    split = global_time_split(data.interactions)
    scores = {name: fit_and_evaluate(model, split.fit_data("test"), split.test, filter_viewed=False).value("ndcg")
              for name, model in [("pop", TopPopular()), ("personal", PersonalTopPopular()),
                                  ("blend", PersonalThenGlobal())]}
    assert scores["personal"] > 2 * scores["pop"]
    assert scores["blend"] >= scores["personal"]


def test_on_movielens_personal_top_popular_finds_nothing_new(ml100k):
    split = global_time_split(ml100k.interactions)
    report = fit_and_evaluate(PersonalTopPopular(), split.fit_data("test"), split.test)
    assert report.recos.is_empty() and report.value("ndcg") == 0.0
    assert np.isnan(report.value("novelty"))  # nobody got a list: the mean over recommended users is undefined


@pytest.mark.parametrize("filter_viewed", [True, False])
def test_top_popular_is_the_first_k_unseen_items_of_one_ranking(filter_viewed):
    """The shared-ranking anti-join against a per-user reference: ties by item id, heavy users whose history
    covers most of the top, users who saw everything (short or empty lists) and cold users."""
    rng = np.random.default_rng(0)
    n_items = 30
    rows = [(u, int(i), t) for u in range(1, 41) for t, i in enumerate(rng.choice(n_items, rng.integers(1, 8), replace=False))]
    rows += [(41, i, i) for i in range(n_items)]             # saw every item
    rows += [(42, i, i) for i in range(n_items - 3)]         # three items left
    train = interactions(rows)
    model = TopPopular().fit(train)
    users = list(range(1, 43)) + [999]                         # 999: unseen at fit
    got = model.recommend(users, k=10, filter_viewed=filter_viewed)
    pop = train.group_by("item_id").agg(pl.col("user_id").n_unique().alias("n"))
    ranking = pop.sort(["n", "item_id"], descending=[True, False])
    seen = train.group_by("user_id").agg(pl.col("item_id").unique())
    seen = dict(zip(seen["user_id"], (set(s) for s in seen["item_id"].to_list())))
    expected = []
    for u in users:
        kept = [(i, n) for i, n in ranking.iter_rows() if not (filter_viewed and i in seen.get(u, set()))][:10]
        expected += [(u, i, float(n), r + 1) for r, (i, n) in enumerate(kept)]
    assert got.rows() == expected
    if filter_viewed:
        assert got.filter(pl.col("user_id") == 41).is_empty() and got.filter(pl.col("user_id") == 42).height == 3
