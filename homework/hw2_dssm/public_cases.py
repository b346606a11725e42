"""Homework 2 — the public cases: small inputs with expected values computed by hand (the computation is in
the comment above each case), and the ANN checks the grader applies to what your index returns. Run them with

    from seminar_lib.grading.public import check
    check("hw2_dssm")          # in the folder that holds your solution.py

The grader runs other, hidden cases (other seeds and sizes, 20,000 item vectors for the ANN, DSSMs trained
with your parts, the leaderboard) on inputs you never see.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from seminar_lib.grading.cases import Case, ProbeResult, against, allclose, all_of, equal

RTOL = 1e-6
SCORE_TOLERANCE = 1e-4  # float32 vectors: scores and near-ties are compared to this precision


def _unit(x: Any) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)


def ann_verdict(inputs: Mapping[str, Any], outputs: Mapping[str, Any]) -> tuple[str | None, np.ndarray, np.ndarray]:
    """Recompute, from the index's partition (``cell_of``) and probed cells (``probed``), each query's candidates,
    and check the results against them: ids are the given ids, no duplicates, scores are the cosines of the
    returned items, best first, and the returned items are the exact top k among the candidates.
    Returns (reason or None, the exact global top-k ids per query, the candidates scored per query)."""
    vectors, queries = _unit(inputs["vectors"]), _unit(inputs["queries"])
    ids, k = np.asarray(inputs["ids"], dtype=np.int64), int(inputs["k"])
    found, scores = np.asarray(outputs["ids"], dtype=np.int64), np.asarray(outputs["scores"], dtype=np.float64)
    cell_of, probed = np.asarray(outputs["cell_of"], dtype=np.int64), np.asarray(outputs["probed"], dtype=np.int64)
    n_q = len(queries)
    exact = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    if found.shape != (n_q, k) or scores.shape != (n_q, k):
        return f"search returned shapes {found.shape} and {scores.shape}, expected {(n_q, k)}", ids[exact], np.zeros(n_q)
    if cell_of.shape != (len(ids),) or probed.ndim != 2 or probed.shape[0] != n_q:
        return (f"cell_of must be ({len(ids)},) and probed ({n_q}, n_probe), got {cell_of.shape} and "
                f"{probed.shape}"), ids[exact], np.zeros(n_q)
    position = {int(v): p for p, v in enumerate(ids)}
    examined = np.zeros(n_q)
    for q in range(n_q):
        if len(set(found[q].tolist())) != k:
            return f"query {q}: duplicate ids in the results", ids[exact], examined
        if not all(int(v) in position for v in found[q]):
            return f"query {q}: an id that is not one of the given ids (positions instead of ids?)", ids[exact], examined
        rows = np.array([position[int(v)] for v in found[q]])
        candidates = np.flatnonzero(np.isin(cell_of, probed[q]))
        examined[q] = candidates.size
        if not np.isin(rows, candidates).all():
            return f"query {q}: a returned item is not in the cells the index says it probed", ids[exact], examined
        true = vectors[rows] @ queries[q]
        if not np.allclose(scores[q], true, atol=SCORE_TOLERANCE):
            return f"query {q}: the scores are not the cosine similarities of the returned items", ids[exact], examined
        if np.any(np.diff(scores[q]) > SCORE_TOLERANCE):
            return f"query {q}: the results are not sorted best first", ids[exact], examined
        if candidates.size >= k:
            kth = np.sort(vectors[candidates] @ queries[q])[::-1][k - 1]
            if true.min() < kth - SCORE_TOLERANCE:
                return f"query {q}: not the exact top {k} among the probed cells' items", ids[exact], examined
    return None, ids[exact], examined


def ann_results(inputs: Mapping[str, Any], own_ids: Any = ()):
    """:func:`ann_verdict` passes, and the first ``len(own_ids)`` queries (those items' own vectors) find their
    item first."""
    own_ids = np.asarray(own_ids, dtype=np.int64)

    def check(result: ProbeResult, _: ProbeResult | None) -> str | None:
        if not result.ok:
            return f"raised {result.error}"
        why, _, _ = ann_verdict(inputs, result.outputs)
        if why is not None:
            return why
        first = np.asarray(result.outputs["ids"])[:own_ids.size, 0]
        if own_ids.size and not np.array_equal(first, own_ids):
            return "an item's own vector does not find that item first"
        return None

    return check


def ann_recall(inputs: Mapping[str, Any], min_recall: float = 0.9, max_share: float = 0.25):
    """Recall@k against the exact cosine top k at least ``min_recall``, while the probed cells hold at most
    ``max_share`` of the catalogue per query on average (both computed here from what the index returned)."""

    def check(result: ProbeResult, _: ProbeResult | None) -> str | None:
        if not result.ok:
            return f"raised {result.error}"
        why, exact, examined = ann_verdict(inputs, result.outputs)
        if why is not None:
            return why
        found = np.asarray(result.outputs["ids"])
        recall = float(np.mean([len(set(a) & set(b)) / len(b) for a, b in zip(found.tolist(), exact.tolist())]))
        share = float(examined.mean()) / len(inputs["ids"])
        if recall < min_recall or share > max_share:
            return (f"recall@{inputs['k']} {recall:.3f} (needs ≥ {min_recall}) while scoring {share:.1%} of the "
                    f"catalogue per query (needs ≤ {max_share:.0%})")
        return None

    return check


# --- pairwise_loss, m = 0.2, γ = 10 ------------------------------------------------------------------------------
# row 0: s⁺ = 0.5, s⁻ = [0.3, 0.6]: γ·(s⁻ − s⁺ + m) = [0, 3] → log(1 + e⁰ + e³) / 10 = log(22.0855) / 10 = 0.309492
# row 1: s⁺ = 1.0, s⁻ = [−1, −1]: γ·(−1.8) = −18 each → log(1 + 2e⁻¹⁸) / 10 = 3.0e−9
# mean = 0.154746
LOSS = {"pos": [0.5, 1.0], "neg": [[0.3, 0.6], [-1.0, -1.0]], "margin": 0.2, "scale": 10.0}
LOSS_VALUE = (math.log(2 + math.exp(3)) + math.log(1 + 2 * math.exp(-18))) / 10 / 2
# overflow: s⁺ = 0, s⁻ = 100 → γ·(100.2) = 1002 → log(1 + e¹⁰⁰²) / 10 = 100.2 (e¹⁰⁰² overflows: use log-sum-exp)
OVERFLOW = {"pos": [0.0], "neg": [[100.0]], "margin": 0.2, "scale": 10.0}

# --- FeatureEmbedding(size 3, dim 2), table rows E0 = [1, 2], E1 = [3, 4], E2 = [5, 6], E3 = padding [0, 0] ----------
# row 0: index [0, 2], weight [1, 0.5] → E0 + 0.5·E2 = [3.5, 5];  row 1: index [1, 3 (padding)], weight [1, 0] → [3, 4]
# gradient of Σ out · G, G = [[1, 1], [1, 0]]: E0 += [1, 1], E2 += 0.5·[1, 1], E1 += [1, 0], E3 += 0·[1, 0]
EMBEDDING = {"size": 3, "dim": 2, "table": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [0.0, 0.0]],
             "index": [[0, 2], [1, 3]], "weight": [[1.0, 0.5], [1.0, 0.0]], "grad_out": [[1.0, 1.0], [1.0, 0.0]]}
EMBEDDING_EXPECTED = {"out": [[3.5, 5.0], [3.0, 4.0]], "grad_table": [[1.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.0, 0.0]]}

# --- Tower(2, 1, hidden 2, dropout 0.5): Linear1 = identity, LayerNorm γ = 1, β = 0, Linear2 w = [1, 2], b = 0.5 ---
# x = [3, 1] → h = [3, 1] → LayerNorm: mean 2, variance 1 → [1, −1] / √(1 + 1e−5) → ReLU → [0.999995, 0]
# → out = 0.999995 + 0.5 = 1.499995; parameters: 2·2 + 2 + 2 + 2 + 2·1 + 1 = 13
TOWER = {"in_dim": 2, "out_dim": 1, "hidden": 2, "dropout": 0.5, "x": [[3.0, 1.0]],
         "weights": {"linear1_weight": [[1.0, 0.0], [0.0, 1.0]], "linear1_bias": [0.0, 0.0],
                     "norm_weight": [1.0, 1.0], "norm_bias": [0.0, 0.0],
                     "linear2_weight": [[1.0, 2.0]], "linear2_bias": [0.5]}}
TOWER_EXPECTED = {"out": [[1 / math.sqrt(1 + 1e-5) + 0.5]], "n_params": 13, "eval_repeatable": True, "out_shape": [1, 1]}

# --- AnnIndex: 6 unit vectors at angles 0°, 10°, 20° (one group) and 180°, 190°, 200° (another), ids 10..15 -------
# query 0 = the item at 10° (id 11): its top-2 are itself (cos 1) and 0° or 20° (cos 0.985, a tie: either one)
# query 1 = the direction 185°: ids 13 and 14 (cos 0.996 each), then 15 — the check recomputes all of this from the
# cells your index says it probed
ANGLES = np.radians([0.0, 10.0, 20.0, 180.0, 190.0, 200.0])
ANN = {"vectors": np.stack([np.cos(ANGLES), np.sin(ANGLES)], axis=1), "ids": [10, 11, 12, 13, 14, 15],
       "queries": [[math.cos(math.radians(10)), math.sin(math.radians(10))],
                   [math.cos(math.radians(185)), math.sin(math.radians(185))]], "k": 2}

CASES = [
    Case("pairwise_loss", "pairwise_loss: two rows, m = 0.2, γ = 10", "loss_value", LOSS,
         against({"loss": LOSS_VALUE}, allclose("loss", rtol=RTOL)), reference=False),
    Case("pairwise_loss", "pairwise_loss: a hinge of 1002 does not overflow", "loss_value", OVERFLOW,
         against({"loss": 100.2}, allclose("loss", rtol=RTOL)), reference=False),
    Case("feature_embedding", "FeatureEmbedding: weighted sum, padding, gradient", "feature_forward", EMBEDDING,
         against(EMBEDDING_EXPECTED, allclose("out", "grad_table", rtol=RTOL)), reference=False),
    Case("tower", "Tower: LayerNorm of two units, parameter count", "tower_forward", TOWER,
         against(TOWER_EXPECTED, all_of(allclose("out", "n_params", rtol=RTOL), equal("eval_repeatable", "out_shape"))),
         reference=False),
    Case("ann_results", "AnnIndex: ids, cosine scores, best first, its own item first", "ann_search", ANN,
         ann_results(ANN, own_ids=[11]), reference=False),
]
