"""Implicit ALS (Hu, Koren & Volinsky 2008) through a thin wrapper over the ``implicit`` library.

Taught in notebook 02 ("EASE & ALS", section "ALS and iALS"). The course does not reimplement
ALS: :class:`ALS` builds the confidence matrix, calls
``implicit.cpu.als.AlternatingLeastSquares`` and exposes its factors to the common interface.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch
from implicit.cpu.als import AlternatingLeastSquares
from threadpoolctl import threadpool_limits

from seminar_lib.errors import check_int
from seminar_lib.models.base import EncodedInteractions, UserBatch
from seminar_lib.models.vector import VectorRecommender


def confidence_matrix(matrix: sp.csr_matrix, alpha: float) -> sp.csr_matrix:
    """Hu et al.'s confidences ``c_ui = 1 + α·r_ui`` on the stored pairs of ``matrix`` (CSR, float32).

    ``matrix`` holds ``r_ui`` (``n_users × n_items``, the summed ``weight`` of the user's
    interactions with the item); unstored pairs keep the implicit confidence 1 and preference 0.
    ``implicit`` ≥ 0.5 reads the stored values *as* confidences (scaled by its own ``alpha``,
    which we leave at 1), so this is where the paper's ``1 + α·r`` is made.
    """
    confidence = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    confidence.data = 1.0 + np.float32(alpha) * confidence.data
    return confidence


def ials_objective(matrix: sp.csr_matrix, user_factors: torch.Tensor, item_factors: torch.Tensor, *, alpha: float,
                   regularization: float) -> float:
    r"""The iALS objective :math:`\sum_{u,i} c_{ui}\,(y_{ui} - p_u^\top q_i)^2 + \lambda(\lVert P\rVert_F^2 + \lVert Q\rVert_F^2)`
    over **all** user-item pairs, with :math:`y_{ui} = [r_{ui} > 0]` and :math:`c_{ui} = 1 + \alpha r_{ui}`.

    ``matrix``: ``r_ui`` (``n_users × n_items`` CSR, stored pairs observed); ``user_factors`` ``P``
    (``n_users × d``) and ``item_factors`` ``Q`` (``n_items × d``), rows in the matrix's order. The sum over
    every pair is never formed: an unobserved pair contributes :math:`s_{ui}^2` (:math:`s = p_u^\top q_i`),
    so the total is :math:`\sum_{u,i} s_{ui}^2 = \operatorname{tr}(P^\top P\, Q^\top Q)` plus, for each observed
    pair, :math:`c_{ui}(1 - s_{ui})^2 - s_{ui}^2` — ``O((n_users + n_items)·d² + nnz·d)``, the same
    :math:`Q^\top Q` trick ALS's updates use.

    >>> r = sp.csr_matrix(np.array([[1.0, 0.0], [0.0, 2.0]]))
    >>> P, Q = torch.tensor([[1.0], [0.5]]), torch.tensor([[1.0], [2.0]])
    >>> # s = [[1, 2], [0.5, 1]]: c(y−s)² = 3·0 + 1·4 + 1·0.25 + 5·0 = 4.25; λ(‖P‖² + ‖Q‖²) = 0.1·(1.25 + 5)
    >>> round(ials_objective(r, P, Q, alpha=2.0, regularization=0.1), 4)
    4.875
    """
    P, Q = user_factors.double(), item_factors.double()
    if P.shape[0] != matrix.shape[0] or Q.shape[0] != matrix.shape[1] or P.shape[1] != Q.shape[1]:
        raise ValueError(f"factors {tuple(P.shape)} and {tuple(Q.shape)} do not fit a {matrix.shape} matrix")
    coo = matrix.tocoo()
    rows, cols = torch.as_tensor(coo.row, dtype=torch.long), torch.as_tensor(coo.col, dtype=torch.long)
    s = (P[rows] * Q[cols]).sum(dim=1)
    c = 1.0 + alpha * torch.as_tensor(coo.data, dtype=torch.float64)
    every_pair = torch.trace((P.T @ P) @ (Q.T @ Q))
    observed = (c * (1.0 - s) ** 2 - s ** 2).sum()
    penalty = regularization * (P.pow(2).sum() + Q.pow(2).sum())
    return float(every_pair + observed + penalty)


def _factors_to_tensor(factors: object) -> torch.Tensor:
    """implicit's factors as a float32 CPU tensor (numpy on CPU; implicit's GPU arrays have ``to_numpy``)."""
    array = factors.to_numpy() if hasattr(factors, "to_numpy") else np.asarray(factors)
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


class ALS(VectorRecommender):
    r"""Implicit-feedback ALS (iALS), fitted by ``implicit``; scores ``x_u · y_iᵀ``.

    Objective (Hu, Koren & Volinsky 2008), over all user-item pairs, observed or not::

        min_{X, Y}  Σ_{u,i} c_ui · (p_ui − x_uᵀ y_i)²  +  λ · (Σ_u ‖x_u‖² + Σ_i ‖y_i‖²)

        p_ui = 1 if (u, i) was observed else 0    (preference: did the user interact?)
        c_ui = 1 + α · r_ui                       (confidence: how sure we are of p_ui)

    ``r_ui`` is the summed ``weight`` of the user's interactions with the item (0 if unobserved);
    ``x_u`` and ``y_i`` are the rows of ``X`` (``n_users × d``) and ``Y`` (``n_items × d``),
    ``d = factors``; ``λ`` is ``regularization``. With ``Y`` fixed each ``x_u`` has a closed form,
    ``x_u = (YᵀC_uY + λI)⁻¹ YᵀC_u p_u`` with ``C_u = diag(c_u1, …, c_un)`` (``n_items × n_items``),
    and vice versa; ALS alternates the two for ``iterations`` sweeps. ``implicit`` computes ``YᵀC_uY`` as
    ``YᵀY + Yᵀ(C_u − I)Y`` so that only the user's own items cost anything, and solves each system
    approximately with a few conjugate-gradient steps warm-started from the previous sweep.

    ALS vs iALS: classic ALS (Bell & Koren 2007) fits explicit ratings and sums the squared error
    over the *observed* pairs only — fine for "how many stars", but with implicit feedback (views,
    clicks, purchases) every observed value is "yes", and a model fitted only on them can predict
    "yes" everywhere. iALS instead treats every unobserved pair as a weak "no" (``p = 0`` with
    confidence 1) and every observed pair as a "yes" whose weight grows with the evidence
    (``c = 1 + α·r``); the sum over all ``n_users·n_items`` pairs stays cheap thanks to the
    ``YᵀY`` trick above.

    Args:
        factors: dimension ``d`` of ``x_u`` and ``y_i``.
        regularization: ``λ ≥ 0``.
        alpha: ``α ≥ 0`` in ``c_ui = 1 + α·r_ui`` (0: every pair weighs the same).
        iterations: ALS sweeps (users then items).
        seed: seeds the random initial factors: two fits with the same seed give identical factors.
        num_threads: implicit's threads (0 = all cores). BLAS is held to one thread during fit, as
            implicit recommends (otherwise it warns about OpenBLAS threads on stderr).
        show_progress: implicit's progress bar over the iterations.

    Attributes:
        user_factors_: ``n_users × d`` float32 tensor (users in the order of ``self.users_``).
        item_factors_: ``n_items × d`` float32 tensor (also :meth:`item_embeddings`).
        model_: the fitted ``implicit`` model.

    Users unseen at fit have no factors, so they follow ``recommend``'s ``on_unsupported_targets``.
    The defaults (32 factors, λ = 10) were chosen on the validation part of ml-100k's global time
    split, where they do clearly better than the common 64 factors with λ = 0.01 (nDCG@10 0.114 vs
    0.084); notebook 02 tunes them again for its dataset.
    """

    fitted_attributes = ("items_", "item_factors_")

    def __init__(self, factors: int = 32, regularization: float = 10.0, alpha: float = 1.0, iterations: int = 15,
                 *, seed: int = 0, num_threads: int = 1, show_progress: bool = False) -> None:
        check_int("factors", factors, minimum=1)
        check_int("iterations", iterations, minimum=1)
        check_int("num_threads", num_threads, minimum=0)
        if not regularization >= 0:
            raise ValueError(f"regularization must be ≥ 0 (λ of the L2 penalty, e.g. 0.01), got {regularization!r}")
        if not alpha >= 0:
            raise ValueError(f"alpha must be ≥ 0 (c_ui = 1 + alpha·r_ui, e.g. 1.0 to 40.0), got {alpha!r}")
        self.factors = factors
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = iterations
        self.seed = seed
        self.num_threads = num_threads
        self.show_progress = show_progress

    def _fit(self, data: EncodedInteractions) -> None:
        if data.matrix.nnz and data.matrix.data.min() < 0:
            raise ValueError("ALS needs non-negative weights (r_ui ≥ 0 gives c_ui = 1 + α·r_ui ≥ 1); "
                             "the interactions' weight column has negative values")
        confidence = confidence_matrix(data.matrix, self.alpha)
        with threadpool_limits(limits=1, user_api="blas"):  # implicit checks (and warns about) BLAS threads
            model = AlternatingLeastSquares(
                factors=self.factors, regularization=self.regularization, alpha=1.0, dtype=np.float32,
                iterations=self.iterations, num_threads=self.num_threads, random_state=self.seed)
            model.fit(confidence, show_progress=self.show_progress)
        self.model_ = model
        self.user_factors_ = _factors_to_tensor(model.user_factors)
        self.item_factors_ = _factors_to_tensor(model.item_factors)

    def _user_vectors(self, batch: UserBatch) -> torch.Tensor:
        """``X_b``: the batch users' factors (``B × d``); the scores are ``X_b · Yᵀ``."""
        users = torch.tensor(batch.user, dtype=torch.long)  # a copy: batch.user may be read-only
        return self.user_factors_[users]

    def _item_vectors(self) -> torch.Tensor:
        """The item factors ``Y`` (``n_items × d``)."""
        return self.item_factors_
