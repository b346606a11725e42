"""Sequential models, the loss registry: each loss against a direct float64 formula on a tiny example."""

from __future__ import annotations

import math

import pytest
import torch

from seminar_lib.models.sequential.losses import (LOSSES, LossInputs, SequentialLoss, bce_loss, full_softmax_loss,
                                                  gbce_beta, gbce_loss, get_loss, in_batch_negatives, log_frequencies,
                                                  register_loss, sampled_softmax_loss, softmax_loss)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def tiny(n: int = 5, n_items: int = 7, d: int = 3, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    hidden = torch.randn(n, d, generator=g, dtype=torch.float64)
    vectors = torch.randn(n_items, d, generator=g, dtype=torch.float64)
    positives = torch.tensor([0, 3, 3, 6, 1][:n])
    return hidden, vectors, positives


def dot(h, v) -> float:
    return float(sum(a * b for a, b in zip(h.tolist(), v.tolist())))


# ------------------------------------------------------------------------------- tensor formulas
def test_bce_matches_the_formula():
    pos = torch.tensor([0.3, -1.2, 2.0], dtype=torch.float64)
    neg = torch.tensor([[0.5], [-0.1], [3.0]], dtype=torch.float64)
    direct = sum(-math.log(sigmoid(p)) - math.log(1 - sigmoid(n[0])) for p, n in zip(pos.tolist(), neg.tolist())) / 3
    assert float(bce_loss(pos, neg)) == pytest.approx(direct, rel=1e-12)


def test_gbce_beta_and_loss_match_petrov_macdonald():
    n_items, k, t = 11, 4, 0.75
    alpha = k / (n_items - 1)
    beta = alpha * (t * (1 - 1 / alpha) + 1 / alpha)
    assert gbce_beta(k, n_items, t) == pytest.approx(beta, rel=1e-12)
    assert gbce_beta(k, n_items, 0.0) == pytest.approx(1.0)                       # t = 0: plain BCE
    assert gbce_beta(k, n_items, 1.0) == pytest.approx(alpha)                     # t = 1: β = α
    pos = torch.tensor([0.3, -1.2], dtype=torch.float64)
    neg = torch.tensor([[0.5, 0.1, -2.0, 1.0], [-0.1, 0.0, 0.7, 2.5]], dtype=torch.float64)
    direct = 0.0
    for p, ns in zip(pos.tolist(), neg.tolist()):
        direct += -math.log(sigmoid(p) ** beta) - sum(math.log(1 - sigmoid(n)) for n in ns)
    assert float(gbce_loss(pos, neg, beta)) == pytest.approx(direct / 2, rel=1e-12)
    assert float(gbce_loss(pos, neg, 1.0)) == pytest.approx(float(bce_loss(pos, neg)), rel=1e-12)
    with pytest.raises(ValueError):
        gbce_beta(k, n_items, 1.5)


def test_softmax_matches_the_formula():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]], dtype=torch.float64)
    positives = torch.tensor([2, 0])
    direct = sum(-row[p] + math.log(sum(math.exp(x) for x in row)) for row, p in zip(logits.tolist(), positives.tolist())) / 2
    assert float(softmax_loss(logits, positives)) == pytest.approx(direct, rel=1e-12)


@pytest.mark.parametrize("chunk", [1, 7, 64, None])
def test_chunked_full_softmax_equals_the_plain_one_in_value_and_gradient(chunk):
    g = torch.Generator().manual_seed(0)
    hidden = (5 * torch.randn(50, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    vectors = torch.randn(13, 4, generator=g, dtype=torch.float64).requires_grad_(True)
    positives = torch.randint(0, 13, (50,), generator=g)
    plain = softmax_loss(hidden @ vectors.T, positives)
    chunked = full_softmax_loss(hidden, vectors, positives, chunk=chunk)
    assert float(chunked.detach()) == pytest.approx(float(plain.detach()), rel=1e-12)
    for a, b in zip(torch.autograd.grad(chunked, (hidden, vectors)), torch.autograd.grad(plain, (hidden, vectors))):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_sampled_softmax_with_collisions_and_logq_matches_the_formula():
    pos = torch.tensor([1.0, 0.2], dtype=torch.float64)
    neg = torch.tensor([[0.5, 2.0, -1.0], [0.3, 0.1, 1.5]], dtype=torch.float64)
    collision = torch.tensor([[False, True, False], [False, False, False]])
    lq_pos = torch.log(torch.tensor([0.5, 0.1], dtype=torch.float64))
    lq_neg = torch.log(torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64))
    direct = 0.0
    for t in range(2):
        p = pos[t].item() - lq_pos[t].item()
        others = [neg[t, j].item() - lq_neg[j].item() for j in range(3) if not collision[t, j]]
        direct += -p + math.log(math.exp(p) + sum(math.exp(x) for x in others))
    got = sampled_softmax_loss(pos, neg, collision, lq_pos, lq_neg)
    assert float(got) == pytest.approx(direct / 2, rel=1e-12)
    with pytest.raises(ValueError, match="alike"):
        sampled_softmax_loss(pos, neg, collision, log_q_pos=lq_pos)               # only one side corrected


# ---------------------------------------------------------------------------------- the registry
def test_registry_declares_what_each_loss_needs():
    assert set(LOSSES) >= {"bce", "gbce", "softmax", "in_batch", "in_batch_logq"}
    assert LOSSES["bce"].needs_negatives and LOSSES["bce"].default_negatives == 1  # one negative, as in the paper
    assert LOSSES["gbce"].needs_negatives
    assert not LOSSES["softmax"].needs_negatives and not LOSSES["in_batch"].needs_negatives
    assert LOSSES["in_batch_logq"].needs_log_q and not LOSSES["in_batch"].needs_log_q
    with pytest.raises(ValueError, match="unknown loss"):
        get_loss("nope")


def test_registry_bce_one_negative_matches_the_formula():
    hidden, vectors, positives = tiny()
    negatives = torch.tensor([[1], [0], [6], [2], [4]])
    x = LossInputs(hidden, positives, vectors, negatives=negatives)
    direct = sum(-math.log(sigmoid(dot(hidden[t], vectors[positives[t]])))
                 - math.log(1 - sigmoid(dot(hidden[t], vectors[negatives[t, 0]]))) for t in range(5)) / 5
    assert float(LOSSES["bce"].compute(x)) == pytest.approx(direct, rel=1e-10)


def test_registry_gbce_with_negatives_per_sequence_masks_the_positive():
    hidden, vectors, positives = tiny()                                # positives 0, 3, 3, 6, 1
    sequence = torch.tensor([0, 0, 1, 1, 1])                           # targets 0-1 in sequence 0, 2-4 in 1
    per_sequence = torch.tensor([[3, 5, 2], [6, 3, 6]])                # 3 is target 1's positive, 6 target 3's
    t = 0.5
    beta = gbce_beta(3, 7, t)
    x = LossInputs(hidden, positives, vectors, negatives=per_sequence, sequence=sequence, gbce_t=t)
    direct = 0.0
    for r in range(5):
        direct += -beta * math.log(sigmoid(dot(hidden[r], vectors[positives[r]])))
        negatives = per_sequence[sequence[r]].tolist()
        direct -= sum(math.log(1 - sigmoid(dot(hidden[r], vectors[j]))) for j in negatives if j != positives[r])
    assert float(LOSSES["gbce"].compute(x)) == pytest.approx(direct / 5, rel=1e-10)
    assert LOSSES["gbce"].negatives_per_sequence and not LOSSES["bce"].negatives_per_sequence


def test_negatives_per_sequence_score_like_per_target_negatives():
    hidden, vectors, positives = tiny()
    sequence = torch.tensor([0, 1, 1, 1, 2])
    per_sequence = torch.tensor([[1, 2], [4, 5], [0, 2]])
    a = LossInputs(hidden, positives, vectors, negatives=per_sequence, sequence=sequence).negative_scores()
    b = LossInputs(hidden, positives, vectors, negatives=per_sequence[sequence]).negative_scores()
    torch.testing.assert_close(a, b)                                    # no collision in this example


def test_registry_softmax_uses_the_real_output_embedding_with_gradient():
    hidden, vectors, positives = tiny()
    vectors = vectors.clone().requires_grad_(True)
    x = LossInputs(hidden, positives, vectors)
    loss = LOSSES["softmax"].compute(x)
    direct = 0.0
    for t in range(5):
        scores = [dot(hidden[t], vectors[i].detach()) for i in range(7)]
        direct += -scores[positives[t]] + math.log(sum(math.exp(s) for s in scores))
    assert float(loss.detach()) == pytest.approx(direct / 5, rel=1e-10)
    loss.backward()
    assert vectors.grad is not None and vectors.grad.abs().sum() > 0             # the seed's .data got none


def test_registry_in_batch_masks_collisions_and_matches_the_formula():
    hidden, vectors, positives = tiny()
    g = torch.Generator().manual_seed(3)
    drawn = in_batch_negatives(positives, 4, torch.Generator().manual_seed(3))
    x = LossInputs(hidden, positives, vectors, n_negatives=4, generator=g)
    loss = LOSSES["in_batch"].compute(x)
    direct = 0.0
    collided = 0
    for t in range(5):
        p = dot(hidden[t], vectors[positives[t]])
        negs = [dot(hidden[t], vectors[j]) for j in drawn.tolist() if j != positives[t]]
        collided += sum(j == positives[t] for j in drawn.tolist())
        direct += -p + math.log(math.exp(p) + sum(math.exp(s) for s in negs))
    assert collided > 0                                                        # the example does collide
    assert float(loss) == pytest.approx(direct / 5, rel=1e-10)


def test_in_batch_negatives_are_drawn_from_the_positives():
    positives = torch.tensor([5] * 90 + [7] * 10)
    drawn = in_batch_negatives(positives, 50, torch.Generator().manual_seed(0))
    assert drawn.shape == (50,) and set(drawn.tolist()) <= {5, 7}
    counts = torch.bincount(torch.cat([in_batch_negatives(positives, 50, torch.Generator().manual_seed(s))
                                       for s in range(200)]), minlength=8)
    assert abs(counts[5].item() / counts.sum().item() - 0.9) < 0.01             # in proportion to positive frequency


def test_registry_in_batch_logq_corrects_positive_and_negatives_with_natural_log():
    hidden, vectors, positives = tiny()
    counts = torch.tensor([3, 1, 0, 4, 0, 0, 2])                              # frequencies of the positives
    log_q = log_frequencies(counts).double()
    drawn = in_batch_negatives(positives, 4, torch.Generator().manual_seed(3))
    x = LossInputs(hidden, positives, vectors, log_q=log_q, n_negatives=4, generator=torch.Generator().manual_seed(3))
    loss = LOSSES["in_batch_logq"].compute(x)
    q = [c / 10 for c in counts.tolist()]
    direct = 0.0
    for t in range(5):
        p = dot(hidden[t], vectors[positives[t]]) - math.log(q[positives[t]])
        negs = [dot(hidden[t], vectors[j]) - math.log(q[j]) for j in drawn.tolist() if j != positives[t]]
        direct += -p + math.log(math.exp(p) + sum(math.exp(s) for s in negs))
    assert float(loss) == pytest.approx(direct / 5, rel=1e-6)
    # the correction is not the seed's: no zeroed item 0, log base e, the positive corrected too
    assert torch.isfinite(log_q[positives]).all()
    only_negatives = LossInputs(hidden, positives, vectors, log_q=None, n_negatives=4,
                                generator=torch.Generator().manual_seed(3))
    assert float(loss) != pytest.approx(float(LOSSES["in_batch"].compute(only_negatives)))


def test_logq_needs_counts_of_every_positive():
    hidden, vectors, positives = tiny()
    log_q = log_frequencies(torch.tensor([0, 1, 1, 1, 1, 1, 1])).double()     # item 0 is a positive with count 0
    x = LossInputs(hidden, positives, vectors, log_q=log_q, n_negatives=3, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="every training positive"):
        LOSSES["in_batch_logq"].compute(x)


def test_register_a_new_loss():
    def mean_score(x: LossInputs) -> torch.Tensor:
        return -x.positive_scores().mean()

    register_loss("test_mean_score", SequentialLoss(mean_score, needs_negatives=False))
    try:
        assert get_loss("test_mean_score").compute is mean_score
        with pytest.raises(ValueError, match="already registered"):
            register_loss("test_mean_score", SequentialLoss(mean_score, needs_negatives=False))
    finally:
        del LOSSES["test_mean_score"]


def test_gbce_equals_the_reference_transformed_logit_form_up_to_the_column_mean():
    """gSASRec's and RecTools' code replace the positive logit by γ(s⁺) = log(1 / (σ(s⁺)^(−β) − 1)), so that
    σ(γ) = σ(s⁺)^β, and take BCE-with-logits averaged over the 1 + k columns of a position; ours sums the k
    negatives instead of averaging the 1 + k columns: the same loss times (1 + k), which Adam's update ignores."""
    k, n_items, t = 2, 9, 0.75
    beta = gbce_beta(k, n_items, t)
    assert beta == pytest.approx(1 - t * (1 - k / (n_items - 1)), rel=1e-12)  # β = 1 − t(1 − α): 0.4375
    assert beta == pytest.approx(0.4375, rel=1e-12)
    pos = torch.tensor([0.0, 1.5], dtype=torch.float64)
    neg = torch.tensor([[0.0, -1.0], [2.0, 0.5]], dtype=torch.float64)
    reference = 0.0
    for p, ns in zip(pos.tolist(), neg.tolist()):
        gamma = math.log(1.0 / (sigmoid(p) ** (-beta) - 1.0))
        columns = [-math.log(sigmoid(gamma))] + [-math.log(1.0 - sigmoid(n)) for n in ns]
        reference += sum(columns) / (1 + k)
    reference /= 2
    assert float(gbce_loss(pos, neg, beta)) == pytest.approx((1 + k) * reference, rel=1e-12)
    # by hand, the first row: β·log 2 + log 2 + log(1 + e^−1) = 0.30325 + 0.69315 + 0.31326
    first = float(gbce_loss(pos[:1], neg[:1], beta))
    assert first == pytest.approx(0.4375 * math.log(2) + math.log(2) + math.log(1 + math.exp(-1)), rel=1e-12)
    assert first == pytest.approx(1.30966, abs=1e-5)
