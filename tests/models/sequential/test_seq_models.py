"""Sequential models end to end on tiny data: SASRec (every loss), BERT4Rec, next-item evaluation.

The generic epoch loop they train through is tested in test_training.py."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
import torch

from seminar_lib.datasets import load
from seminar_lib.models.baselines import TopPopular
from seminar_lib.models.sequential import BERT4Rec, SASRec, evaluate_next_item, next_item_samples
from seminar_lib.splits import global_time_split

TINY = dict(dim=16, heads=1, layers=1, max_len=20, batch_size=32, lr=1e-2, dropout=0.1, log_every=None, device="cpu")
LOSS_NAMES = ["bce", "gbce", "softmax", "in_batch", "in_batch_logq"]


@pytest.fixture(scope="module")
def seq_data():
    """Synthetic events with strong successor structure: 200 users, 150 items, ~20 events each."""
    ds = load("synthetic", n_users=200, n_items=150, sequential_prob=0.8, mean_events=20, seed=0)
    split = global_time_split(ds.interactions, valid=0.1, test=0.2)
    test_samples = next_item_samples(ds.interactions, start=split.test["timestamp"].min())
    return ds, split, test_samples


def events(rows: list[tuple[int, int, int]]) -> pl.DataFrame:
    """(user, item, day) → an interactions frame."""
    start = datetime(2024, 1, 1)
    return pl.DataFrame({"user_id": [r[0] for r in rows], "item_id": [r[1] for r in rows],
                         "timestamp": [start + timedelta(days=r[2]) for r in rows]})


# --------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_loss_decreases_within_two_epochs(seq_data, loss):
    _, split, _ = seq_data
    model = SASRec(loss, epochs=2, **TINY).fit(split.train)
    first, second = model.history_["loss"].to_list()
    assert second < first


def test_bert4rec_loss_decreases_within_two_epochs(seq_data):
    _, split, _ = seq_data
    model = BERT4Rec(epochs=2, **TINY).fit(split.train)
    first, second = model.history_["loss"].to_list()
    assert second < first


def test_fit_is_deterministic_on_cpu(seq_data):
    _, split, samples = seq_data
    fits = [SASRec("gbce", epochs=2, seed=7, **TINY).fit(split.train) for _ in range(2)]
    for name, value in fits[0].net_.state_dict().items():
        assert torch.equal(value, fits[1].net_.state_dict()[name]), name
    users = split.train["user_id"].unique().head(20)
    assert fits[0].recommend(users, k=5).equals(fits[1].recommend(users, k=5))
    other = SASRec("gbce", epochs=2, seed=8, **TINY).fit(split.train)
    assert not torch.equal(other.net_.items.ids, fits[0].net_.items.ids)
    before = torch.random.get_rng_state()
    BERT4Rec(epochs=1, seed=7, **TINY).fit(split.train)
    assert torch.equal(torch.random.get_rng_state(), before)             # the global stream is left alone


@pytest.mark.parametrize("model_class", [SASRec, BERT4Rec])
def test_beats_top_popular_on_synthetic(seq_data, model_class):
    _, split, samples = seq_data
    model = model_class(epochs=5 if model_class is SASRec else 10, **TINY).fit(split.train)
    ours = evaluate_next_item(model, samples, k=10).value("ndcg")
    popular = evaluate_next_item(TopPopular().fit(split.train), samples, k=10).value("ndcg")
    assert ours > (4 if model_class is SASRec else 1.5) * popular, (ours, popular)  # measured: ×10 and ×2.3


def test_validation_does_not_change_what_training_draws(seq_data):
    _, split, _ = seq_data
    plain = SASRec("bce", epochs=3, **TINY).fit(split.train)
    validated = SASRec("bce", epochs=3, validate_every=1, valid_per_user=None, **TINY).fit(split.train, split.valid)
    assert validated.history_["loss"].to_list() == plain.history_["loss"].to_list()
    assert validated.history_["val_ndcg@10"].null_count() == 0


def test_early_stopping_restores_the_best_epoch(seq_data):
    _, split, _ = seq_data
    model = SASRec("softmax", epochs=12, validate_every=1, patience=2, valid_per_user=None,
                   **{**TINY, "lr": 0.05}).fit(split.train, split.valid)
    result = model.train_result_
    curve = model.history_["val_ndcg@10"].to_list()
    assert result.best_epoch == 1 + max(range(len(curve)), key=lambda i: (curve[i], -i))
    if result.stopped_early:
        assert result.epochs_run == result.best_epoch + 2
    again = model._validate()["val_ndcg@10"]                            # the restored weights validate as the best
    assert again == pytest.approx(result.best_value, abs=1e-12)


def test_logq_frequencies_count_the_positives_not_the_inputs():
    # sequences 10 → 20 → 30 and 10 → 20 → 40: item 10 is only ever an input, never a target
    df = events([(1, 10, 0), (1, 20, 1), (1, 30, 2), (2, 10, 0), (2, 20, 1), (2, 40, 2)])
    model = SASRec("in_batch_logq", epochs=1, **TINY).fit(df)
    counts = dict(zip(model.items_.ids.to_list(), model.target_counts_.tolist()))
    assert counts == {10: 0, 20: 2, 30: 1, 40: 1}
    bert = BERT4Rec("in_batch_logq", epochs=1, **TINY).fit(df)            # masked targets: any position
    assert dict(zip(bert.items_.ids.to_list(), bert.target_counts_.tolist())) == {10: 2, 20: 2, 30: 1, 40: 1}


def test_item_features_enter_the_item_vectors(seq_data):
    ds, split, samples = seq_data
    model = SASRec("softmax", epochs=2, item_features=("category",), **TINY)
    with pytest.raises(Exception, match="item_features"):
        model.fit(split.train)
    model.fit(split.train, item_features=ds.items)
    assert len(model.feature_names_) == ds.items["category"].n_unique()
    assert model.net_.items.features is not None
    assert model.item_embeddings().shape == (len(model.items_), 16)
    assert evaluate_next_item(model, samples).value("hit_rate") > 0


# ------------------------------------------------------------------------------------ recommending
def test_filter_viewed_never_returns_seen_items(seq_data):
    _, split, _ = seq_data
    model = SASRec("softmax", epochs=1, **TINY).fit(split.train)
    users = split.train["user_id"].unique()
    recos = model.recommend(users, k=10)
    seen = recos.join(split.train.select("user_id", "item_id"), on=["user_id", "item_id"], how="inner")
    assert seen.is_empty() and recos.height == 10 * users.len()
    unfiltered = model.recommend(users, k=10, filter_viewed=False)
    assert not unfiltered.join(split.train, on=["user_id", "item_id"], how="inner").is_empty()
    with_history = model.recommend(users.head(5), k=10, interactions=split.train)
    assert with_history.equals(recos.filter(pl.col("user_id").is_in(users.head(5).implode())))


def test_recommend_reads_the_history_in_time_order():
    rows = [(u, i, d) for u in range(1, 30) for d, i in enumerate(range(1, 8))]     # everyone: 1 → 2 → … → 7
    model = SASRec("softmax", epochs=25, **TINY).fit(events(rows))
    after_3 = model.recommend([100], k=1, interactions=events([(100, 1, 0), (100, 2, 1), (100, 3, 2)]))
    after_5 = model.recommend([100], k=1, interactions=events([(100, 3, 0), (100, 4, 1), (100, 5, 2)]))
    assert after_3["item_id"].to_list() == [4] and after_5["item_id"].to_list() == [6]


def test_a_user_known_by_one_interaction_is_served(seq_data):
    _, split, _ = seq_data
    item = split.train["item_id"][0]
    for model_class in (SASRec, BERT4Rec):
        model = model_class(epochs=1, **TINY).fit(split.train)
        one = events([(10_000, item, 0)])
        recos = model.recommend([10_000], k=5, interactions=one)
        assert recos.height == 5 and item not in recos["item_id"].to_list()
        with pytest.raises(Exception, match="interactions="):
            model.recommend([10_000], k=5)
        unknown = events([(10_001, -5, 0)])                              # its only item is unknown to the model
        assert model.recommend([10_001], k=5, interactions=unknown, on_unsupported_targets="ignore").is_empty()


def test_users_with_one_event_are_not_trained_on_but_are_served():
    rows = [(u, i, d) for u in range(1, 20) for d, i in enumerate(range(1, 6))] + [(99, 3, 0)]
    model = SASRec("softmax", epochs=1, **TINY).fit(events(rows))
    assert model.n_train_sequences_ == 19
    recos = model.recommend([99], k=3)
    assert recos.height == 3 and 3 not in recos["item_id"].to_list()


def test_similar_items_use_the_item_embeddings(seq_data):
    _, split, _ = seq_data
    model = SASRec("softmax", epochs=1, **TINY).fit(split.train)
    items = split.train["item_id"].unique().head(3)
    sims = model.similar_items(items, k=4)
    assert sims.height == 12 and (sims["item_id"] != sims["similar_item_id"]).all()
    vectors = torch.nn.functional.normalize(model.item_embeddings(), dim=-1)
    first = model.items_.transform(items.head(1)).item()
    best = int(torch.topk(vectors @ vectors[first], 2).indices[1])
    assert sims["similar_item_id"][0] == model.items_.inverse([best])[0]


# -------------------------------------------------------------------------------------- evaluation
def test_next_item_metrics_average_over_users_not_events():
    # user 1: three test events, each right after the item popular in train; user 2: one event
    train = events([(u, 1, 0) for u in range(3, 8)] + [(u, 2, 1) for u in range(3, 6)] + [(1, 9, 0), (2, 9, 0)])
    test = events([(1, 1, 5), (1, 2, 6), (1, 3, 7), (2, 4, 5)])
    samples = next_item_samples(pl.concat([train, test]), start=datetime(2024, 1, 5))
    assert samples.n_samples == 4 and samples.n_users == 2
    model = TopPopular().fit(train)                                       # ranks 1, 2, 9, … ; filter-viewed
    per_user = evaluate_next_item(model, samples, k=1, metrics=["hit_rate"], with_coverage=False)
    per_event = evaluate_next_item(model, samples, k=1, metrics=["hit_rate"], with_coverage=False, average="event")
    # hits@1: user 1 → item 1 yes, then 2 (1 seen) yes, then 9 ≠ 3 no; user 2 → 1 ≠ 4 no
    assert per_event.value("hit_rate", 1) == pytest.approx(2 / 4)
    assert per_user.value("hit_rate", 1) == pytest.approx((2 / 3 + 0) / 2)


def test_next_item_samples_histories_and_per_user_sampling():
    rows = [(1, i, i) for i in range(10)] + [(2, 20 + i, i) for i in range(4)]
    df = events(rows)
    s = next_item_samples(df, start=datetime(2024, 1, 3))
    assert s.n_samples == 8 + 2                                         # Jan 3..10 for user 1, Jan 3..4 for user 2
    lengths = s.history.group_by("user_id").len().join(s.targets, on="user_id")
    assert (lengths["len"] == lengths["timestamp"].dt.day() - 1).all()   # every earlier event, nothing later
    one = next_item_samples(df, start=datetime(2024, 1, 3), per_user=1, seed=0)
    assert one.n_samples == 2 and one.n_users == 2
    assert one.targets.equals(next_item_samples(df, start=datetime(2024, 1, 3), per_user=1, seed=0).targets)
    with pytest.raises(ValueError):
        next_item_samples(df, per_user=0)


def test_pseudo_users_never_collide_with_real_ids():
    base = events([(1, 10, 0), (1, 11, 1), (2, 10, 0), (2, 12, 2)])
    for cast in (pl.String, pl.UInt32, pl.Int64):
        df = base.with_columns(pl.col("user_id").cast(cast))
        s = next_item_samples(df, start=datetime(2024, 1, 2))
        assert s.targets["user_id"].dtype == cast
        assert not s.targets["user_id"].is_in(df["user_id"].implode()).any()
        report = evaluate_next_item(TopPopular().fit(df), s, k=1, metrics=["hit_rate"])
        assert report.value("hit_rate", 1) == pytest.approx(0.5)           # user 1 → 11 (hit), user 2 → 11 ≠ 12


@pytest.mark.gpu
def test_fit_on_gpu(seq_data):
    _, split, samples = seq_data
    model = SASRec("in_batch_logq", epochs=1, **{**TINY, "device": "cuda"}).fit(split.train)
    assert evaluate_next_item(model, samples).value("hit_rate") >= 0
