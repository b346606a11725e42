"""Homework 3 — the public cases: small inputs with expected values computed by hand (the computation is in
the comment above each case). Run them with

    from seminar_lib.grading.public import check
    check("hw3_sasrec")          # in the folder that holds your solution.py

The grader runs other, hidden cases (other seeds, overflow-prone scores, large draws, a trained SASRec)
against the reference solution; these are the ones you can see.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from seminar_lib.grading.cases import Case, ProbeResult, against, allclose, all_of, equal, raises

RTOL = 1e-6


def distribution_matches(q: Sequence[float], z: float = 8.0):
    """The sampler's counts follow ``q``: no draw of an item with q = 0, and Pearson's χ² over the items with
    q > 0 below ``dof + z·√(2·dof)`` (χ² has mean dof and s.d. √(2·dof); at z = 8 a correct sampler fails
    with a probability far below one in a million, while a wrong α or a uniform sampler on a large draw
    lands orders of magnitude above). The same seed must give the same draw."""
    q = np.asarray(q, dtype=np.float64)

    def check(result: ProbeResult, expected: ProbeResult | None) -> str | None:
        if not result.ok:
            return f"raised {result.error}"
        counts = np.asarray(result.outputs["counts"], dtype=np.float64)
        if counts.shape != q.shape:
            return f"counts over {counts.size} items, expected {q.size}"
        if counts[q == 0].sum() > 0:
            return f"drew items whose probability is 0 (e.g. item {int(np.flatnonzero((q == 0) & (counts > 0))[0])})"
        n, live = counts.sum(), q > 0
        expected_counts = n * q[live]
        chi2 = float(((counts[live] - expected_counts) ** 2 / expected_counts).sum())
        dof = int(live.sum()) - 1
        bar = dof + z * math.sqrt(2 * max(dof, 1))
        if chi2 > bar:
            worst = int(np.flatnonzero(live)[np.argmax(np.abs(counts[live] - expected_counts) / np.sqrt(expected_counts))])
            return (f"the draws do not follow q: chi2 = {chi2:.0f} > {bar:.0f} over {dof + 1} items "
                    f"(item {worst}: {int(counts[worst])} draws, expected {n * q[worst]:.0f})")
        if not result.outputs.get("repeatable", False):
            return "the same generator seed gave different draws: draw only from the generator you are given"
        return None

    return check


# --- mixture_log_q: popularity [3, 1, 0, 0] (N = 4) → pop = [0.75, 0.25, 0, 0] ---------------------------------
# α = 0.5: q = 0.5/4 + 0.5·pop = [0.125 + 0.375, 0.125 + 0.125, 0.125, 0.125] = [0.5, 0.25, 0.125, 0.125]
# α = 0:   q = pop = [0.75, 0.25, 0, 0]  →  log q = [ln 0.75, ln 0.25, −∞, −∞]
POPULARITY = [3.0, 1.0, 0.0, 0.0]
Q_HALF = [0.5, 0.25, 0.125, 0.125]

# --- mixed_softmax_loss: N = 2 targets, k = 2 negatives, log q_neg = [ln 0.5, ln 0.25] → ln(k·q) = [0, ln 0.5] --
# row 0: pos 0, neg [0, 0], column 1 masked → logits [0, 0 − 0]          → loss = ln 2 − 0 = 0.693147
# row 1: pos 1, neg [1, 2]                  → logits [1, 1 − 0, 2 + ln 2] → ln(e + e + 2e²) − 1 = ln 2 + ln(1 + e)
#        = 2.006409;  mean = 1.349778
# gradients (softmax − one-hot) / N: row 0: p = [½, ½] → ∂pos = −¼, ∂neg = [¼, 0]
#        row 1: p = [1/(2(1+e)), 1/(2(1+e)), e/(1+e)] = [0.134471, 0.134471, 0.731059] → ∂pos = −0.432765,
#        ∂neg = [0.067235, 0.365529]
E = math.e
P1 = 1 / (2 * (1 + E))
LOSS_INPUTS = {"pos": [0.0, 1.0], "neg": [[0.0, 0.0], [1.0, 2.0]], "collision": [[False, True], [False, False]],
               "log_q_neg": [math.log(0.5), math.log(0.25)]}
LOSS_EXPECTED = {"loss": (math.log(2) + math.log(2) + math.log(1 + E)) / 2, "grad_pos": [-0.25, (P1 - 1) / 2],
                 "grad_neg": [[0.25, 0.0], [P1 / 2, (E / (1 + E)) / 2]]}

# --- overflow: pos 1000, neg [1000, −1000], q = [½, ½] → ln(k·q) = 0 → logits [1000, 1000, −1000]
# loss = 1000 + ln(1 + 1 + e^−2000) − 1000 = ln 2 (e^1000 overflows float64: use logsumexp)
OVERFLOW = {"pos": [1000.0], "neg": [[1000.0, -1000.0]], "collision": [[False, False]],
            "log_q_neg": [math.log(0.5), math.log(0.5)]}

# --- the registry entry on a case whose negatives are certain: α = 0 and all popularity on item 2 -------------
# x.log_q = ln pop = [−∞, −∞, 0] → q = [0, 0, 1]: both negatives are item 2, ln(k·q) = ln 2
# hidden = [[1, 0], [0, 1]], item vectors [[1, 0], [0, 1], [1, 1]], positives [0, 1]:
# r⁺ = [1, 1], r⁻ = [[1, 1], [1, 1]] → logits per row [1, 1 − ln 2, 1 − ln 2] → ln(e(1 + ½ + ½)) − 1 = ln 2
ENTRY = {"hidden": [[1.0, 0.0], [0.0, 1.0]], "item_vectors": [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]],
         "positives": [0, 1], "log_q": [-math.inf, -math.inf, 0.0], "n_negatives": 2, "alpha": 0.0, "seed": 0}

CASES = [
    Case("mixture_log_q", "mixture_log_q: α = 0.5", "log_q", {"popularity": POPULARITY, "alpha": 0.5},
         against({"log_q": np.log(Q_HALF)}, allclose("log_q", rtol=RTOL)), reference=False),
    Case("mixture_log_q", "mixture_log_q: α = 0, items never seen get log q = −inf", "log_q",
         {"popularity": POPULARITY, "alpha": 0.0},
         against({"log_q": [math.log(0.75), math.log(0.25), -math.inf, -math.inf]}, allclose("log_q", rtol=RTOL)),
         reference=False),
    Case("mixed_softmax_loss", "mixed_softmax_loss: value and gradients, a masked collision", "loss_value",
         LOSS_INPUTS, against(LOSS_EXPECTED, allclose("loss", "grad_pos", "grad_neg", rtol=RTOL)), reference=False),
    Case("mixed_softmax_loss", "mixed_softmax_loss: scores of 1000 do not overflow", "loss_value", OVERFLOW,
         against({"loss": math.log(2)}, allclose("loss", rtol=RTOL)), reference=False),
    # 40,000 draws from q = [0.5, 0.25, 0.125, 0.125]: about 20,000 / 10,000 / 5,000 / 5,000
    Case("sampler", "sample_mixed_negatives: 40,000 draws follow q", "sampler",
         {"popularity": POPULARITY, "alpha": 0.5, "k": 40_000, "seed": 0},
         distribution_matches(Q_HALF), reference=False),
    Case("registry_entry", "registry_entry: certain negatives, loss ln 2", "entry_step", ENTRY,
         against({"loss": math.log(2), "negatives": [2, 2], "needs_log_q": True, "needs_negatives": False},
                 all_of(allclose("loss", rtol=RTOL), equal("negatives", "needs_log_q", "needs_negatives"))),
         reference=False),
    Case("input_validation", "mixture_log_q refuses α = 1.5", "bad_input",
         {"function": "mixture_log_q", "inputs": {"popularity": POPULARITY, "alpha": 1.5}},
         raises("ValueError"), reference=False),
    Case("input_validation", "sample_mixed_negatives refuses k = 0", "bad_input",
         {"function": "sample_mixed_negatives", "inputs": {"popularity": POPULARITY, "alpha": 0.5, "k": 0}},
         raises("ValueError"), reference=False),
]
