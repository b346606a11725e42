"""Hidden tests of homework 3, graded against the library's losses (seminar_lib.models.sequential.losses)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from seminar_lib.datasets import load
from seminar_lib.models import SASRec, TopPopular
from seminar_lib.models.sequential import evaluate_next_item, losses, next_item_samples
from seminar_lib.splits import global_time_split, k_core


def scores(seed: int, n: int = 64, k: int = 20) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, generator=gen, dtype=torch.float64) * 3, torch.randn(n, k, generator=gen, dtype=torch.float64) * 3


@pytest.mark.parametrize("k,n,t", [(256, 1000, 0.75), (10, 11, 0.0), (5, 11, 1.0), (50, 3000, 0.2)])
def test_gbce_beta(solution, k, n, t):
    assert solution.gbce_beta(k, n, t) == pytest.approx(losses.gbce_beta(k, n, t), rel=1e-9)
    with pytest.raises(ValueError):
        solution.gbce_beta(k, n, 1.5)


@pytest.mark.parametrize("seed,beta", [(0, 1.0), (1, 0.3), (2, 0.05)])
def test_gbce_loss(solution, seed, beta):
    pos, neg = scores(seed)
    pos[0], neg[0, 0] = 80.0, -80.0  # the stable formulation must not overflow
    got = solution.gbce_loss(pos, neg, beta)
    assert torch.is_tensor(got) and got.dim() == 0 and torch.isfinite(got)
    assert float(got) == pytest.approx(float(losses.gbce_loss(pos, neg, beta)), rel=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sampled_softmax_logq(solution, seed):
    pos, neg = scores(seed)
    gen = torch.Generator().manual_seed(seed + 10)
    collision = torch.rand(neg.shape, generator=gen) < 0.1
    log_q_pos = torch.log(torch.rand(pos.shape, generator=gen, dtype=torch.float64) + 1e-3)
    log_q_neg = torch.log(torch.rand(neg.shape[1], generator=gen, dtype=torch.float64) + 1e-3)
    got = solution.sampled_softmax_logq(pos, neg, collision, log_q_pos, log_q_neg)
    expected = losses.sampled_softmax_loss(pos, neg, collision, log_q_pos, log_q_neg)
    assert float(got) == pytest.approx(float(expected), rel=1e-6)


def loss_inputs(seed: int, n_items: int = 40, n: int = 30, d: int = 8) -> losses.LossInputs:
    gen = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 20, (n_items,), generator=gen)
    return losses.LossInputs(
        hidden=torch.randn(n, d, generator=gen, dtype=torch.float64),
        positives=torch.randint(0, n_items, (n,), generator=gen),
        item_vectors=torch.randn(n_items, d, generator=gen, dtype=torch.float64),
        log_q=losses.log_frequencies(counts).double(), n_negatives=12,
        generator=torch.Generator().manual_seed(seed + 1))


@pytest.mark.parametrize("seed", [0, 1])
def test_in_batch_logq(solution, seed, monkeypatch):
    expected = float(losses.LOSSES["in_batch_logq"].compute(loss_inputs(seed)))
    # the student's entry must stand on its own: the library's sampled softmax is unavailable here
    monkeypatch.setattr(losses, "sampled_softmax_loss", lambda *a, **k: pytest.fail("uses the library's loss"))
    got = solution.in_batch_logq(loss_inputs(seed))
    assert float(got) == pytest.approx(expected, rel=1e-6)


@pytest.fixture(scope="module")
def ml100k_sequences():
    data = k_core(load("ml-100k").interactions, 5)
    split = global_time_split(data)
    samples = next_item_samples(data, start=split.info["test_start"], per_user=5, seed=0)
    return split, samples


def register(solution) -> str:
    entry = dataclasses.replace(losses.LOSSES["in_batch_logq"], compute=solution.in_batch_logq)
    losses.register_loss("hw3_student_logq", entry, replace=True)
    return "hw3_student_logq"


def test_trains_sasrec(solution):
    name = register(solution)
    data = load("synthetic", n_users=200, n_items=80, sequential_prob=0.5, seed=3).interactions
    model = SASRec(name, dim=16, layers=1, max_len=20, epochs=3, batch_size=64, n_negatives=32, seed=0,
                   device="cpu", log_every=None).fit(data)
    losses_by_epoch = model.history_["loss"].to_list()
    assert losses_by_epoch[-1] < losses_by_epoch[0]


def test_quality_on_held_out(solution, ml100k_sequences):
    split, samples = ml100k_sequences
    name = register(solution)
    settings = dict(epochs=4, seed=0, device="cpu", log_every=None)
    student = SASRec(name, **settings).fit(split.train)
    library = SASRec("in_batch_logq", **settings).fit(split.train)
    ours = evaluate_next_item(student, samples).value("ndcg", 10)
    reference = evaluate_next_item(library, samples).value("ndcg", 10)
    popular = evaluate_next_item(TopPopular().fit(split.train), samples).value("ndcg", 10)
    assert ours >= 0.9 * reference and ours > popular, (ours, reference, popular)
