"""DSSM two-tower model (seminar_lib.models.two_tower): losses, leakage, negatives, determinism, quality."""

from __future__ import annotations

import math

import numpy as np
import polars as pl
import pytest
import torch

from seminar_lib.evaluation import fit_and_evaluate
from seminar_lib.features import FeaturePreset, category
from seminar_lib.models.baselines import TopPopular
from seminar_lib.models.mf import bpr_loss
from seminar_lib.models.two_tower import (DSSM, LOSSES, contains, in_batch_softmax_loss, in_batch_softmax_loss_unique,
                                          pair_keys, ragged_rows, sample_unseen_negatives, triplet_loss)
from seminar_lib.models.two_tower.losses import hard_negative_bpr_loss
from seminar_lib.splits import global_time_split
from seminar_lib.training import format_log_line, sample_negatives

# Synthetic data has ~11k training pairs: small batches give enough steps per epoch.
FAST = dict(batch_size=256, log_every=None, device="cpu", epochs=2)


@pytest.fixture(scope="module")
def split(synthetic):
    return global_time_split(synthetic.interactions)


def make(synthetic, **options) -> DSSM:
    return DSSM(**{"user_features": synthetic.users, "item_features": synthetic.items, "preset": "synthetic",
                   **FAST, **options})


# --------------------------------------------------------------------------------------- losses
def test_triplet_and_bpr_match_their_formulas_in_float64():
    gen = torch.Generator().manual_seed(0)
    pos = torch.randn(6, generator=gen, dtype=torch.float64)
    neg = torch.randn(6, 5, generator=gen, dtype=torch.float64)
    expected_triplet = np.mean([max(0.0, 0.3 - pos[b].item() + neg[b, j].item()) for b in range(6) for j in range(5)])
    assert triplet_loss(pos, neg, margin=0.3).item() == pytest.approx(expected_triplet, rel=1e-12)
    expected_bpr = np.mean([-math.log(1 / (1 + math.exp(-(pos[b] - neg[b, j]).item())))
                            for b in range(6) for j in range(5)])
    assert bpr_loss(pos, neg).item() == pytest.approx(expected_bpr, rel=1e-12)
    # the seed's "bpr" (1 − σ(Δ)) is another function: bounded by 1, while BPR grows without bound
    big = torch.tensor([-10.0], dtype=torch.float64)
    assert bpr_loss(big, torch.zeros(1, 1, dtype=torch.float64)).item() > 10 > 1 - torch.sigmoid(big).item()
    assert LOSSES["triplet"].needs_negatives and LOSSES["bpr"].needs_negatives
    assert not LOSSES["softmax"].needs_negatives and not LOSSES["triplet"].scaled and LOSSES["softmax"].scaled


def softmax_reference(logits: torch.Tensor, positives: torch.Tensor, log_q: torch.Tensor | None) -> float:
    """The sampled-softmax loss written out row by row in float64 (masked: the other copies of a row's positive)."""
    total = 0.0
    B = logits.shape[0]
    for b in range(B):
        cols = [c for c in range(B) if c == b or positives[c] != positives[b]]
        z = [logits[b, c].item() - (log_q[c].item() if log_q is not None else 0.0) for c in cols]
        own = z[cols.index(b)]
        total += -(own - math.log(sum(math.exp(v) for v in z)))
    return total / B


def test_in_batch_softmax_matches_the_formula_with_logq_and_collision_mask():
    gen = torch.Generator().manual_seed(1)
    positives = torch.tensor([3, 7, 3, 1, 7, 3, 9, 0])  # item 3 three times, item 7 twice
    logits = 3 * torch.randn(8, 8, generator=gen, dtype=torch.float64)
    counts = torch.bincount(positives, minlength=10).double()
    log_q = (counts / counts.sum()).log()[positives]
    for lq in (log_q, None):
        expected = softmax_reference(logits, positives, lq)
        assert in_batch_softmax_loss(logits, positives, lq).item() == pytest.approx(expected, rel=1e-12)
    # masked entries do not matter: row 0's other copies of item 3 (columns 2 and 5) can be anything
    changed = logits.clone()
    changed[0, 2], changed[0, 5] = 50.0, -50.0
    assert in_batch_softmax_loss(changed, positives, log_q).item() == pytest.approx(
        in_batch_softmax_loss(logits, positives, log_q).item(), rel=1e-12)
    # ... whereas an unmasked negative does
    changed[0, 1] = 50.0
    before = in_batch_softmax_loss(logits, positives, log_q).item()
    assert in_batch_softmax_loss(changed, positives, log_q).item() > before + 1


def test_fast_softmax_on_distinct_items_equals_the_batch_formula():
    gen = torch.Generator().manual_seed(2)
    for B in (1, 5, 64):
        positives = torch.randint(0, max(B // 3, 1), (B,), generator=gen)
        users = torch.randn(B, 4, generator=gen, dtype=torch.float64)
        items = torch.randn(30, 4, generator=gen, dtype=torch.float64)
        log_q_all = torch.randn(30, generator=gen, dtype=torch.float64)
        unique, inverse, counts = torch.unique(positives, return_inverse=True, return_counts=True)
        for lq in (True, False):
            ref = in_batch_softmax_loss(users @ items[positives].T, positives, log_q_all[positives] if lq else None)
            fast = in_batch_softmax_loss_unique(users @ items[unique].T, inverse, counts,
                                                log_q_all[unique] if lq else None)
            assert fast.item() == pytest.approx(ref.item(), rel=1e-10, abs=1e-12)


def test_logq_is_the_log_share_of_each_item_among_the_training_positives(synthetic, split):
    model = make(synthetic, epochs=1).fit(split.train)
    pairs = split.train.unique(["user_id", "item_id"])
    share = pairs.group_by("item_id").len().with_columns(pl.col("len") / pairs.height)
    expected = torch.tensor(np.log(share.sort("item_id")["len"].to_numpy()), dtype=torch.float32)
    assert model.items_.ids.to_list() == share.sort("item_id")["item_id"].to_list()
    assert torch.allclose(model.log_q_, expected, atol=1e-6)


# ------------------------------------------------------------------------------ leakage, negatives
def test_ragged_rows_and_pair_membership():
    indptr, values = torch.tensor([0, 2, 2, 5]), torch.tensor([7, 8, 1, 2, 3])  # rows [7, 8], [], [1, 2, 3]
    flat, offsets, counts = ragged_rows(indptr, values, torch.tensor([2, 1, 0]))
    assert flat.tolist() == [1, 2, 3, 7, 8] and offsets.tolist() == [0, 3, 3] and counts.tolist() == [3, 0, 2]
    keys = pair_keys(torch.tensor([0, 0, 2]), torch.tensor([1, 4, 0]), n_items=5).sort().values
    assert contains(keys, torch.tensor([1, 4, 10, 2, 11])).tolist() == [True, True, True, False, False]


@pytest.mark.parametrize("history", ["bag", "embedding"])
def test_the_positive_is_not_in_the_training_history(synthetic, split, history):
    model = make(synthetic, epochs=1, history=history).fit(split.train)
    net = model.net_
    csr = model.viewed_.tocsr()
    users = torch.tensor([0, 0, 5, 9])
    positives = torch.tensor([int(csr[0].indices[0]), int(csr[0].indices[1]), int(csr[5].indices[-1]),
                              int(csr[9].indices[2])])
    h = model.training_history(users, positives)
    table = net.history_weights().detach()
    for b, (u, i) in enumerate(zip(users.tolist(), positives.tolist())):
        others = [j for j in csr[u].indices.tolist() if j != i]  # H_u without the positive
        assert torch.allclose(h[b], table[others].mean(0), atol=1e-5)
    # the user vector of a pair does not depend on its positive's row of W at all ...
    with torch.no_grad():
        before = model.training_user_vectors(users, positives)
        table_param = net.history_weights()
        table_param[positives[0]] += 100.0
        after = model.training_user_vectors(users, positives)
    assert torch.allclose(before[0], after[0], atol=1e-4)
    assert not torch.allclose(before[1], after[1], atol=1e-2)  # ... while another pair of the user sees it


def test_a_user_with_one_item_has_an_empty_training_history(synthetic):
    tiny = pl.DataFrame({"user_id": [1, 2, 2, 3], "item_id": [1, 1, 2, 3]})
    model = DSSM(history="bag", **FAST).fit(tiny)
    h = model.training_history(torch.tensor([0, 1]), torch.tensor([0, 0]))
    assert h[0].abs().max().item() == 0.0  # user 1's only item is the positive: nothing left
    assert torch.allclose(h[1], model.net_.history_weights()[1].detach(), atol=1e-6)


def test_uniform_negatives_hit_the_users_items_and_unseen_sampling_does_not(ml100k):
    train = global_time_split(ml100k.interactions).train
    model = DSSM(**{**FAST, "epochs": 0}).fit(train)
    n_items = len(model.items_)
    coo = model.viewed_.tocoo()
    users, items = torch.as_tensor(coo.row, dtype=torch.long), torch.as_tensor(coo.col, dtype=torch.long)
    keys = pair_keys(users, items, n_items).sort().values
    gen = torch.Generator().manual_seed(0)
    plain = sample_negatives(items, n_items, 4, gen)
    hit_per_pair = contains(keys, pair_keys(users[:, None].expand_as(plain), plain, n_items)).float().mean().item()
    per_user = (np.diff(model.viewed_.tocsr().indptr) / n_items).mean()  # the seed: one sample per user
    # measured: 12.3 % of uniform negatives per observed pair (heavy users count more), 6.6 % per user
    assert 0.11 < hit_per_pair < 0.135 and 0.06 < per_user < 0.075
    unseen = sample_unseen_negatives(users, items, keys, n_items, 4, gen)
    assert not (unseen == items[:, None]).any()
    assert not contains(keys, pair_keys(users[:, None].expand_as(unseen), unseen, n_items)).any()


def test_negatives_never_equal_the_positive_even_when_the_user_saw_everything():
    # user 0 saw every item: the redraws give up after `rounds`, but a negative is still never the positive
    users = torch.zeros(50, dtype=torch.long)
    positives = torch.arange(50) % 4
    keys = pair_keys(torch.zeros(4, dtype=torch.long), torch.arange(4), 4)
    neg = sample_unseen_negatives(users, positives, keys, 4, 3, torch.Generator().manual_seed(0), rounds=3)
    assert not (neg == positives[:, None]).any()


@pytest.mark.parametrize("loss", ["triplet", "bpr"])
def test_sampled_negatives_in_training_exclude_the_positive_and_seen_items(synthetic, split, loss, monkeypatch):
    import seminar_lib.models.two_tower.sampling as sampling

    seen = []
    original = sampling.sample_unseen_negatives

    def spy(users, positives, *args, **kwargs):
        neg = original(users, positives, *args, **kwargs)
        seen.append((users, positives, neg, args[0]))
        return neg

    monkeypatch.setattr(sampling, "sample_unseen_negatives", spy)
    make(synthetic, loss=loss, n_negatives=3, epochs=1).fit(split.train)
    assert seen
    for users, positives, neg, keys in seen:
        assert neg.shape == (positives.shape[0], 3)  # every encoded negative enters the loss: (B, N) scores
        assert not (neg == positives[:, None]).any()
        n_items = int(split.train["item_id"].n_unique())
        assert not contains(keys, pair_keys(users[:, None].expand_as(neg), neg, n_items)).any()


# ---------------------------------------------------------------------------------- training
@pytest.mark.parametrize("loss", ["softmax", "bpr", "triplet"])
def test_loss_decreases_within_two_epochs(synthetic, split, loss):
    model = make(synthetic, loss=loss).fit(split.train)
    values = model.history_["loss"].to_list()
    assert len(values) == 2 and values[1] < values[0]


def test_same_seed_same_weights_other_seed_other_weights(synthetic, split):
    state = torch.random.get_rng_state()
    a, b, c = (make(synthetic, seed=s, dropout=0.2).fit(split.train) for s in (0, 0, 1))
    assert torch.equal(torch.random.get_rng_state(), state)  # the global random state is left alone
    states = (m.net_.state_dict() for m in (a, b, c))
    for (name, pa), pb, pc in zip(next(states).items(), next(states).values(), next(states).values()):
        assert torch.equal(pa, pb), name
        if pa.is_floating_point() and pa.numel() > 1 and "norm" not in name:
            assert not torch.equal(pa, pc), name
    users = split.train["user_id"].unique()
    assert a.recommend(users, k=10).equals(b.recommend(users, k=10))
    assert a.history_.equals(b.history_)


def test_feature_tables_are_matched_by_id_not_by_row(synthetic, split):
    ordered = make(synthetic, epochs=1).fit(split.train)
    shuffled = make(synthetic, epochs=1, user_features=synthetic.users.sample(fraction=1.0, shuffle=True, seed=1),
                    item_features=synthetic.items.sample(fraction=1.0, shuffle=True, seed=2)).fit(split.train)
    for pa, pb in zip(ordered.net_.parameters(), shuffled.net_.parameters()):
        assert torch.equal(pa, pb)
    users = split.train["user_id"].unique().head(30)
    assert ordered.recommend(users, k=5).equals(shuffled.recommend(users, k=5))


def test_filter_viewed_and_scores_are_the_training_similarity(synthetic, split):
    train = split.train
    users = train["user_id"].unique()
    for similarity in ("cosine", "dot"):
        model = make(synthetic, similarity=similarity).fit(train)
        recos = model.recommend(users, k=20)
        assert recos.join(train, on=["user_id", "item_id"], how="semi").is_empty()
        assert recos.group_by("user_id").len()["len"].min() == 20
        scores = model.score_pairs(recos["user_id"], recos["item_id"])
        assert scores == pytest.approx(recos["score"].to_numpy(), abs=1e-5)
        full = model.user_embeddings() @ model.item_embeddings().T
        u = torch.tensor(model.users_.transform(recos["user_id"]).to_numpy())
        i = torch.tensor(model.items_.transform(recos["item_id"]).to_numpy())
        assert full[u, i].numpy() == pytest.approx(recos["score"].to_numpy(), abs=1e-5)
        if similarity == "cosine":
            assert recos["score"].abs().max() <= 1 + 1e-6
            assert torch.allclose(model.item_embeddings().norm(dim=1), torch.ones(1), atol=1e-5)
    unfiltered = model.recommend(users, k=20, filter_viewed=False)
    assert not unfiltered.join(train, on=["user_id", "item_id"], how="semi").is_empty()


def test_unseen_users_are_scored_from_their_history_and_features(synthetic, split):
    known = int(split.train["user_id"][0])
    history = split.train.filter(pl.col("user_id") == known)
    newcomer = 10**6  # not in the training interactions; in the feature table with the known user's features
    users = synthetic.users.vstack(synthetic.users.filter(pl.col("user_id") == known).with_columns(
        pl.lit(newcomer, dtype=synthetic.users["user_id"].dtype).alias("user_id")))
    model = make(synthetic, user_features=users).fit(split.train)
    given = history.with_columns(pl.lit(newcomer, dtype=history["user_id"].dtype).alias("user_id"))
    a = model.recommend([known], k=10).drop("user_id")
    b = model.recommend([newcomer], k=10, interactions=given).drop("user_id")
    assert a.select("item_id", "rank").equals(b.select("item_id", "rank"))
    assert a["score"].to_numpy() == pytest.approx(b["score"].to_numpy(), abs=1e-5)
    with pytest.raises(KeyError, match="interactions="):
        model.recommend([newcomer], k=10)


def test_validation_early_stopping_restores_the_best_weights(synthetic, split, capsys):
    model = make(synthetic, epochs=10, patience=2, log_every=1, lr=0.03)  # a high lr: validation soon gets worse
    model.fit(split.train, valid=split.valid)
    history = model.history_
    assert history.columns == ["epoch", "loss", "val_ndcg@10"]
    best = history["val_ndcg@10"].max()
    assert history["val_ndcg@10"].to_list()[model.best_epoch_ - 1] == best
    assert model._validation_ndcg(model._warm_valid(split.valid)) == pytest.approx(best, abs=1e-9)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == format_log_line(1, history["loss"][0], **{"val_ndcg@10": history["val_ndcg@10"][0]})
    assert printed[-1] == f"best epoch {model.best_epoch_:3d}  val_ndcg@10 {best:.4f}  (stopped early)"
    # measured: the best is epoch 3 and training stops after epoch 5 (2 validations without improvement)
    assert history.height < 10 and history.height - model.best_epoch_ == 2
    assert len(model.epoch_seconds_) == history.height


@pytest.mark.parametrize("options", [
    dict(features="onehot", history="embedding"),
    dict(history="none", item_ids=False),
    dict(norm="batch", residual_blocks=1, hidden=(32, 32), dropout=0.2),
])
def test_variants_train_and_recommend(synthetic, split, options):
    model = make(synthetic, epochs=1, **options).fit(split.train)
    recos = model.recommend(split.train["user_id"].unique().head(20), k=5)
    assert recos.height == 100 and recos["score"].is_finite().all()
    assert model.similar_items([1, 2], k=3).height == 6
    assert model.user_embeddings().shape == (split.train["user_id"].n_unique(), model.out_dim)


def test_id_only_model_without_feature_tables(split):
    model = DSSM(**FAST).fit(split.train)
    assert model.user_encoder_ is None and model.item_encoder_ is None
    assert model.recommend(split.train["user_id"].unique().head(3), k=4).height == 12


def test_beats_top_popular_on_synthetic(synthetic, split):
    # measured (400 users × 200 items; batch 512, 4 epochs, defaults otherwise): nDCG@10 / TopPopular's is
    # 1.11–1.36 over synthetic datasets 0–2 × model seeds 0–2; here (dataset 0, seed 0) 0.234 vs 0.172 = 1.36
    pop = fit_and_evaluate(TopPopular(), split.train, split.test).value("ndcg")
    dssm = fit_and_evaluate(make(synthetic, epochs=4, batch_size=512), split.train, split.test).value("ndcg")
    assert dssm > 1.15 * pop


def test_errors(synthetic):
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'"):
        DSSM("hinge")
    for bad, match in [(dict(similarity="l2"), "similarity"), (dict(features="dense"), "features"),
                       (dict(history="rnn"), "history"), (dict(norm="group"), "norm"),
                       (dict(n_negatives=0), "n_negatives"),
                       (dict(hidden=(0,)), "hidden"), (dict(temperature=0.0), "temperature"), (dict(lr=0), "lr"),
                       (dict(dropout=1.0), "dropout"), (dict(epochs=-1), "epochs"), (dict(margin=-1), "margin"),
                       (dict(history="embedding", item_ids=False), "item_ids"),
                       (dict(user_features=synthetic.users), "preset"), (dict(preset="synthetic"), "tables")]:
        with pytest.raises(ValueError, match=match):
            DSSM(**bad)
    with pytest.raises(KeyError, match="unknown feature preset"):
        DSSM(user_features=synthetic.users, preset="nope")
    only_users = FeaturePreset(users=(category("gender"),))
    with pytest.raises(ValueError, match="item tower has no input"):
        DSSM(item_ids=False, history="none", user_features=synthetic.users, preset=only_users, **FAST).fit(
            synthetic.interactions)
    with pytest.raises(RuntimeError, match="not fitted"):
        DSSM().user_embeddings()


# --------------------------------------------------------------------- hooks (homework 2)
def test_a_callable_loss_is_a_pairwise_loss_on_scaled_similarities(synthetic, split):
    from seminar_lib.models.two_tower import DSSMLoss, resolve_loss

    def my_bpr(pos, neg):
        return bpr_loss(pos, neg)

    builtin, custom = make(synthetic, loss="bpr").fit(split.train), make(synthetic, loss=my_bpr).fit(split.train)
    assert custom.name == "DSSM(my_bpr)" and resolve_loss(my_bpr).needs_negatives and resolve_loss(my_bpr).scaled
    for pa, pb in zip(builtin.net_.parameters(), custom.net_.parameters()):  # same negatives, same scaled inputs
        assert torch.equal(pa, pb)
    # a DSSMLoss chooses raw similarities itself: the triplet written by hand is the registered one
    hand = DSSMLoss(lambda pos, neg: triplet_loss(pos, neg, margin=0.3), needs_negatives=True, scaled=False)
    a, b = make(synthetic, loss="triplet", margin=0.3).fit(split.train), make(synthetic, loss=hand).fit(split.train)
    assert a.history_.equals(b.history_)


def test_callable_loss_errors(synthetic, split):
    from seminar_lib.models.two_tower import DSSMLoss

    with pytest.raises(ValueError, match="must return a scalar tensor, got shape"):
        make(synthetic, loss=lambda pos, neg: neg - pos[:, None]).fit(split.train)
    with pytest.raises(ValueError, match="pairwise"):
        DSSM(loss=DSSMLoss(in_batch_softmax_loss, needs_negatives=False, scaled=True))
    with pytest.raises(ValueError, match="callable"):
        DSSM(loss=3)


class SumOfEmbeddings(torch.nn.Module):
    """A feature module for the ``features=`` hook: ``Σ_l weight · E[index]``, padding row included."""

    calls = 0

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(size + 1, dim, padding_idx=size)

    def forward(self, index, weight):
        SumOfEmbeddings.calls += 1
        return (self.table(index) * weight[..., None]).sum(1)


def test_feature_factory_builds_the_feature_inputs(synthetic, split):
    SumOfEmbeddings.calls = 0
    model = make(synthetic, features=SumOfEmbeddings, embedding_dim=16, epochs=1).fit(split.train)
    modules = [m for m in model.net_.modules() if isinstance(m, SumOfEmbeddings)]
    assert len(modules) == 2 and SumOfEmbeddings.calls > 0  # one for the users' features, one for the items'
    sizes = {m.table.num_embeddings - 1 for m in modules}
    assert sizes == {model.user_encoder_.size, model.item_encoder_.size}
    assert all(m.table.embedding_dim == 16 for m in modules)
    recos = model.recommend(split.train["user_id"].unique().head(10), k=5)
    assert recos.height == 50 and recos["score"].is_finite().all()
    with pytest.raises(ValueError, match=r"must map index .* to \(\d+, 16\)"):
        make(synthetic, features=lambda size, dim: SumOfEmbeddings(size, dim + 1), embedding_dim=16).fit(split.train)
    with pytest.raises(TypeError, match="must build a torch.nn.Module"):
        make(synthetic, features=lambda size, dim: "not a module").fit(split.train)


def test_tower_factory_replaces_the_mlp_towers(synthetic, split):
    from seminar_lib.models.two_tower import Tower

    built = []

    def factory(in_dim, out_dim):
        built.append((in_dim, out_dim))
        return Tower(in_dim, (128,), out_dim, dropout=0.1, norm="layer")

    default, custom = make(synthetic).fit(split.train), make(synthetic, tower=factory).fit(split.train)
    assert built == [(custom.net_.user_tower.net[0].in_features, 64), (custom.net_.item_tower.net[0].in_features, 64)]
    for pa, pb in zip(default.net_.parameters(), custom.net_.parameters()):  # the default towers, built by a factory
        assert torch.equal(pa, pb)
    small = make(synthetic, tower=lambda i, o: torch.nn.Sequential(torch.nn.Linear(i, o)), epochs=1).fit(split.train)
    assert isinstance(small.net_.user_tower, torch.nn.Sequential) and len(small.net_.user_tower) == 1
    with pytest.raises(TypeError, match="must build a torch.nn.Module"):
        make(synthetic, tower=lambda i, o: None).fit(split.train)
    with pytest.raises(ValueError, match="tower must be None or a factory"):
        DSSM(tower="mlp")


def test_hard_negative_bpr_keeps_the_highest_scored_negatives():
    pos = torch.tensor([0.5, 0.0], dtype=torch.float64)
    neg = torch.tensor([[0.1, 0.9, -0.3, 0.4], [0.2, -0.1, 0.0, 0.3]], dtype=torch.float64)
    hardest = torch.tensor([[0.9, 0.4], [0.3, 0.2]], dtype=torch.float64)  # the top 2 of each row, by hand
    expected = np.mean([math.log1p(math.exp(h - p)) for p, row in zip(pos.tolist(), hardest.tolist()) for h in row])
    assert hard_negative_bpr_loss(pos, neg, keep=2).item() == pytest.approx(expected, rel=1e-12)
    # keep ≥ N is plain BPR over all negatives; the gradient reaches only the kept negatives
    assert hard_negative_bpr_loss(pos, neg, keep=9).item() == pytest.approx(bpr_loss(pos, neg).item(), rel=1e-12)
    neg = neg.clone().requires_grad_()
    hard_negative_bpr_loss(pos, neg, keep=2).backward()
    assert (neg.grad != 0).tolist() == [[False, True, False, True], [True, False, False, True]]
    with pytest.raises(ValueError, match="keep"):
        hard_negative_bpr_loss(pos, neg, keep=0)
    with pytest.raises(ValueError, match=r"\(B, N\)"):
        hard_negative_bpr_loss(pos, neg[0], keep=1)


def test_a_model_trains_with_hard_negatives(synthetic, split):
    from functools import partial

    model = make(synthetic, loss=partial(hard_negative_bpr_loss, keep=2), n_negatives=8).fit(split.train)
    losses = model.history_["loss"].to_list()
    assert losses[-1] < losses[0]
    assert model.recommend(split.train["user_id"].unique()[:5], k=3).height == 15
