"""Matrix factorization (three objectives) and the shared training pieces (seminar_lib.training)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import torch
from scipy.stats import chisquare

from seminar_lib.evaluation import fit_and_evaluate
from seminar_lib.models.baselines import TopPopular
from seminar_lib.models.mf import OBJECTIVES, MatrixFactorization, bce_loss, bpr_loss, mse_ones_loss
from seminar_lib.splits import filter_warm, global_time_split
from seminar_lib.training import History, epoch_batches, format_log_line, sample_negatives, should_log

# Synthetic data has ~11k training pairs: smaller batches than the ml-100k default give enough steps.
FAST = dict(batch_size=512, log_every=None, device="cpu")


# ------------------------------------------------------------------------------ training helpers
def test_negatives_never_equal_the_positive_and_are_uniform_over_the_others():
    n_items, per_item = 7, 20_000
    gen = torch.Generator().manual_seed(0)
    positives = torch.arange(n_items).repeat_interleave(per_item)           # every item as the positive
    neg = sample_negatives(positives, n_items, n_negatives=3, generator=gen)
    assert neg.shape == (n_items * per_item, 3) and neg.dtype == torch.long
    assert not (neg == positives[:, None]).any()
    assert neg.min() >= 0 and neg.max() < n_items
    counts = torch.zeros(n_items, n_items, dtype=torch.long)
    counts.index_put_((positives[:, None].expand_as(neg).reshape(-1), neg.reshape(-1)),
                      torch.ones(neg.numel(), dtype=torch.long), accumulate=True)
    assert counts.diagonal().sum() == 0
    for pos in range(n_items):  # each row: 60k draws spread uniformly over the 6 other items
        others = np.delete(counts[pos].numpy(), pos)
        assert chisquare(others).pvalue > 1e-3, (pos, others)
        assert np.abs(others / others.sum() - 1 / (n_items - 1)).max() < 0.01


def test_negative_shift_is_a_bijection_onto_the_other_items():
    # neg = r + (r >= pos) maps r ∈ {0..n−2} one-to-one onto {0..n−1} \ {pos}: uniform r → uniform neg
    n = 6
    for pos in range(n):
        r = torch.arange(n - 1)
        assert sorted((r + (r >= pos).long()).tolist()) == [i for i in range(n) if i != pos]


def test_negatives_with_two_items_are_the_other_item_and_errors():
    pos = torch.tensor([0, 1, 1, 0])
    neg = sample_negatives(pos, 2, 5, torch.Generator().manual_seed(0))
    assert (neg == (1 - pos)[:, None]).all()
    with pytest.raises(ValueError, match="at least 2 items"):
        sample_negatives(pos, 1)
    with pytest.raises(ValueError, match="n_negatives"):
        sample_negatives(pos, 5, 0)


def test_sampling_is_seeded():
    pos = torch.randint(0, 50, (100,), generator=torch.Generator().manual_seed(1))
    a = sample_negatives(pos, 50, 4, torch.Generator().manual_seed(7))
    b = sample_negatives(pos, 50, 4, torch.Generator().manual_seed(7))
    c = sample_negatives(pos, 50, 4, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_epoch_batches_cover_every_index_once_in_a_seeded_order():
    gen = torch.Generator().manual_seed(0)
    first = list(epoch_batches(10, 4, gen))
    assert [len(b) for b in first] == [4, 4, 2]
    assert sorted(torch.cat(first).tolist()) == list(range(10))
    second = torch.cat(list(epoch_batches(10, 4, gen)))
    assert not torch.equal(torch.cat(first), second)  # the generator advanced: a new order next epoch
    again = torch.Generator().manual_seed(0)
    assert torch.equal(torch.cat(list(epoch_batches(10, 4, again))), torch.cat(first))
    assert torch.cat(list(epoch_batches(5, 2))).tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="batch_size"):
        list(epoch_batches(5, 0))


def test_history_frame_and_log_line():
    history = History()
    assert history.frame().columns == ["epoch"] and len(history) == 0
    history.log(1, loss=0.5)
    history.log(2, loss=0.25, **{"val_ndcg@10": 0.125})
    frame = history.frame()
    assert frame.schema == {"epoch": pl.Int64, "loss": pl.Float64, "val_ndcg@10": pl.Float64}
    assert frame.rows() == [(1, 0.5, None), (2, 0.25, 0.125)]
    assert history.last["loss"] == 0.25
    assert format_log_line(5, 0.43214) == "epoch   5  loss 0.4321"
    assert format_log_line(120, 1.0, **{"val_ndcg@10": 0.08765, "skipped": None}) == \
        "epoch 120  loss 1.0000  val_ndcg@10 0.0877"
    assert [e for e in range(1, 13) if should_log(e, 5, 12)] == [5, 10, 12]
    assert not any(should_log(e, None, 3) for e in range(1, 4))


# --------------------------------------------------------------------------------------- losses
def test_losses_match_their_formulas():
    gen = torch.Generator().manual_seed(0)
    pos = 3 * torch.randn(8, generator=gen, dtype=torch.float64)
    neg = 3 * torch.randn(8, 4, generator=gen, dtype=torch.float64)
    sig = torch.sigmoid
    assert mse_ones_loss(pos).item() == pytest.approx(((pos - 1) ** 2).mean().item())
    expected_bce = (-torch.log(sig(pos)) - torch.log(1 - sig(neg)).sum(dim=1)).mean()
    assert bce_loss(pos, neg).item() == pytest.approx(expected_bce.item(), rel=1e-10)
    expected_bpr = -torch.log(sig(pos[:, None] - neg)).mean()
    assert bpr_loss(pos, neg).item() == pytest.approx(expected_bpr.item(), rel=1e-10)
    assert set(OBJECTIVES) == {"mse_ones", "bce", "bpr"}
    assert not OBJECTIVES["mse_ones"].needs_negatives and OBJECTIVES["bpr"].needs_negatives


# ---------------------------------------------------------------------------------------- model
@pytest.fixture(scope="module")
def split(synthetic):
    return global_time_split(synthetic.interactions)


def auc(real: np.ndarray, random: np.ndarray) -> float:
    """P(score of a real pair > score of a random pair), ties counting one half."""
    diff = real[:, None] - random[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def real_vs_random(model: MatrixFactorization, split) -> tuple[np.ndarray, np.ndarray]:
    """Scores of held-out test pairs (warm users and items) and of the same users with uniform random items."""
    test = filter_warm(split.test, split.train)
    items = split.train["item_id"].unique().sort().to_numpy()
    random_items = np.random.default_rng(0).choice(items, test.height)
    return model.score_pairs(test["user_id"], test["item_id"]), model.score_pairs(test["user_id"], random_items)


@pytest.mark.parametrize("objective", ["mse_ones", "bce", "bpr"])
def test_loss_decreases_within_two_epochs(split, objective):
    model = MatrixFactorization(objective, epochs=2, **FAST).fit(split.train)
    loss = model.history_["loss"].to_list()
    assert len(loss) == 2 and loss[1] < loss[0]


def test_same_seed_same_model_other_seed_other_model(split):
    fit = lambda seed: MatrixFactorization("bpr", factors=16, epochs=3, seed=seed, **FAST).fit(split.train)  # noqa: E731
    a, b, c = fit(0), fit(0), fit(1)
    for (name, pa), pb, pc in zip(a.net_.named_parameters(), b.net_.parameters(), c.net_.parameters(), strict=True):
        assert torch.equal(pa, pb), name
        assert not torch.equal(pa, pc), name
    users = split.train["user_id"].unique()
    assert a.recommend(users, k=10).equals(b.recommend(users, k=10))
    assert not a.recommend(users, k=10).equals(c.recommend(users, k=10))
    assert a.history_.equals(b.history_)


def test_filter_viewed_and_scores_agree_with_score_pairs(split):
    train = split.train
    model = MatrixFactorization("bce", factors=8, epochs=2, **FAST).fit(train)
    recos = model.recommend(train["user_id"].unique(), k=20)
    assert recos.join(train, on=["user_id", "item_id"], how="semi").is_empty()
    assert recos.group_by("user_id").len()["len"].min() == 20
    assert model.score_pairs(recos["user_id"], recos["item_id"]) == pytest.approx(recos["score"].to_numpy(), abs=1e-5)
    unfiltered = model.recommend(train["user_id"].unique(), k=20, filter_viewed=False)
    assert not unfiltered.join(train, on=["user_id", "item_id"], how="semi").is_empty()


def test_history_columns_validation_and_printed_lines(split, capsys):
    model = MatrixFactorization("bpr", factors=8, epochs=4, batch_size=512, log_every=2, device="cpu")
    model.fit(split.train, valid=split.valid)
    history = model.history_
    assert history.columns == ["epoch", "loss", "val_ndcg@10"]
    assert history["epoch"].to_list() == [1, 2, 3, 4]
    assert history["val_ndcg@10"].is_null().to_list() == [True, False, True, False]
    assert 0 < history["val_ndcg@10"].drop_nulls().min() <= 1
    printed = capsys.readouterr().out.splitlines()
    assert printed[:-1] == [format_log_line(e, history["loss"][e - 1], **{"val_ndcg@10": history["val_ndcg@10"][e - 1]})
                            for e in (2, 4)]
    assert printed[0].startswith("epoch   2  loss ") and "val_ndcg@10 0." in printed[0]
    best = history["val_ndcg@10"].max()  # the Trainer's closing line; MF never stops early
    assert history["val_ndcg@10"][model.best_epoch_ - 1] == best
    assert printed[-1] == f"best epoch {model.best_epoch_:3d}  val_ndcg@10 {best:.4f}"
    quiet = MatrixFactorization("bpr", factors=8, epochs=2, **FAST).fit(split.train)
    assert quiet.history_.columns == ["epoch", "loss"] and capsys.readouterr().out == ""
    assert len(model.epoch_seconds_) == 4


def test_validation_does_not_change_training_and_keeps_the_best_epoch(split):
    # validation draws no random numbers, so the losses are those of a run without it, and the weights
    # kept (the best validated epoch's) are those of a run without it that stops at that epoch
    plain = MatrixFactorization("bpr", factors=8, epochs=3, **FAST).fit(split.train)
    validated = MatrixFactorization("bpr", factors=8, epochs=3, batch_size=512, log_every=1, device="cpu")
    validated.fit(split.train, valid=split.valid)
    assert validated.history_["loss"].to_list() == plain.history_["loss"].to_list()
    assert plain.best_epoch_ == 3 and validated.train_result_.epochs_run == 3  # no early stopping
    curve = validated.history_["val_ndcg@10"].to_list()
    assert curve[validated.best_epoch_ - 1] == max(curve)
    shorter = MatrixFactorization("bpr", factors=8, epochs=validated.best_epoch_, **FAST).fit(split.train)
    assert torch.equal(shorter.item_embeddings(), validated.item_embeddings())


def test_bpr_beats_top_popular_on_synthetic(split):
    # measured (seed 0, 400 users × 200 items): BPR 0.229, TopPopular 0.172
    pop = fit_and_evaluate(TopPopular(), split.train, split.test).value("ndcg")
    bpr = fit_and_evaluate(MatrixFactorization("bpr", **FAST), split.train, split.test).value("ndcg")
    assert bpr > 1.15 * pop


def test_mse_on_ones_collapses_and_bpr_separates_real_from_random_pairs(split):
    # Measured (synthetic datasets 0–2 × model seeds 0–2; this one is dataset 0, seed 0): MSE-on-ones
    # fits its ones (final loss < 1e-4), and held-out real pairs score like random ones: mean gap
    # 0.007–0.038 (here 0.011), AUC 0.51–0.58 (here 0.521), nDCG@10 0.6–0.7× TopPopular's (here 0.129
    # vs 0.172). BPR: AUC 0.61–0.67 (here 0.611), mean gap 0.28–0.51 (here 0.285).
    mse = MatrixFactorization("mse_ones", **FAST).fit(split.train)
    bpr = MatrixFactorization("bpr", **FAST).fit(split.train)
    assert mse.history_["loss"][-1] < 1e-3  # the training pairs all score ≈ 1 ...
    real, random = real_vs_random(mse, split)
    assert abs(real.mean() - random.mean()) < 0.05  # ... and so does everything else, real or not
    assert auc(real, random) < 0.57
    real_b, random_b = real_vs_random(bpr, split)
    assert auc(real_b, random_b) > 0.58
    assert auc(real_b, random_b) > auc(real, random) + 0.04
    assert real_b.mean() - random_b.mean() > 0.2
    pop = fit_and_evaluate(TopPopular(), split.train, split.test).value("ndcg")
    assert fit_and_evaluate(mse, split.train, split.test, fit=False).value("ndcg") < pop


def test_embeddings_and_similar_items(split):
    model = MatrixFactorization("bpr", factors=8, epochs=1, **FAST).fit(split.train)
    n_items, n_users = split.train["item_id"].n_unique(), split.train["user_id"].n_unique()
    assert model.item_embeddings().shape == (n_items, 8)
    assert model.user_embeddings().shape == (n_users, 8)
    sims = model.similar_items([1, 2], k=5)
    assert sims.height == 10 and not (sims["item_id"] == sims["similar_item_id"]).any()
    assert model.net_.user_bias is None  # BPR: user and global biases cancel in s_ui − s_uj
    assert MatrixFactorization("bce", factors=8, epochs=1, **FAST).fit(split.train).net_.user_bias is not None


def test_errors(split):
    with pytest.raises(ValueError, match=r"unknown objective 'mse'.*\['bce', 'bpr', 'mse_ones'\]"):
        MatrixFactorization("mse")
    for bad in (dict(factors=0), dict(epochs=-1), dict(lr=0), dict(weight_decay=-1.0), dict(n_negatives=0),
                dict(batch_size=2.5), dict(log_every=0)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            MatrixFactorization(**bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        MatrixFactorization().score_pairs([1], [1])
    model = MatrixFactorization(factors=4, epochs=1, **FAST).fit(split.train)
    with pytest.raises(ValueError, match="as many users as items"):
        model.score_pairs([1, 2], [1])
    with pytest.raises(KeyError, match="unknown id"):
        model.score_pairs([10**9], [1])
    with pytest.raises(ValueError, match="missing column"):
        model.fit(split.train, valid=split.valid.rename({"item_id": "movie"}))
    assert MatrixFactorization("bce").weight_decay == OBJECTIVES["bce"].default_weight_decay
    assert MatrixFactorization("mse_ones", weight_decay=0.5).weight_decay == 0.5


# ---------------------------------------------------------------------------- sparse embeddings
def test_sparse_gradients_hold_only_the_rows_a_batch_touches():
    from seminar_lib.models.mf import MFNet

    net = MFNet(50, 30, 8, user_and_global_bias=True, init_std=0.1, generator=torch.Generator().manual_seed(0),
                sparse=True)
    net(torch.tensor([3, 3, 7]), torch.tensor([1, 2, 2])).sum().backward()
    grad = net.user_factors.grad.coalesce()
    assert grad.is_sparse and sorted(grad.indices()[0].tolist()) == [3, 7]
    assert sorted(net.item_factors.grad.coalesce().indices()[0].tolist()) == [1, 2]


def test_sparse_adam_moves_like_dense_adam_when_every_row_is_touched_at_every_step(split):
    """One batch an epoch touches every user and item row, and without weight decay SparseAdam's update is
    Adam's, up to where ε enters (SparseAdam adds it before the bias correction): what training moved agrees
    within 10 % (measured: 3–4 %), so the sparse path changes only what happens to untouched rows."""
    options = dict(objective="bpr", factors=8, epochs=3, batch_size=1 << 20, weight_decay=0.0, log_every=None,
                   device="cpu")
    start = MatrixFactorization(**{**options, "epochs": 0}).fit(split.train)
    dense = MatrixFactorization(**options).fit(split.train)
    sparse = MatrixFactorization(**options, sparse=True).fit(split.train)
    for name in ("user_factors", "item_factors", "item_bias"):
        a, b, s0 = (m.net_.get_parameter(name).detach() for m in (dense, sparse, start))
        assert (a - b).norm() < 0.1 * (a - s0).norm(), name


def test_sparse_mf_with_lazy_weight_decay_beats_top_popular_on_synthetic(split):
    pop = fit_and_evaluate(TopPopular(), split.train, split.test).value("ndcg")
    mf = fit_and_evaluate(MatrixFactorization("bce", n_negatives=4, sparse=True, **FAST), split.train, split.test)
    assert mf.value("ndcg") > 1.15 * pop


@pytest.mark.gpu
def test_sparse_mf_on_cuda_trains_like_cpu(split):
    """The same seed draws the same shuffles and negatives on both devices (CPU generator): SparseAdam on CUDA
    ends where it ends on the CPU, up to float rounding."""
    options = dict(objective="bce", factors=16, epochs=2, batch_size=512, log_every=None, sparse=True)
    cpu = MatrixFactorization(**options, device="cpu").fit(split.train)
    gpu = MatrixFactorization(**options, device="cuda").fit(split.train)
    assert gpu.net_.user_factors.device.type == "cuda"
    for (name, a), b in zip(cpu.net_.named_parameters(), gpu.net_.parameters(), strict=True):
        torch.testing.assert_close(a, b.cpu(), rtol=1e-3, atol=1e-4, msg=name)
