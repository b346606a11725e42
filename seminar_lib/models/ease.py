"""EASE — Embarrassingly Shallow Autoencoders (Steck, WWW 2019), in closed form with torch.

Taught in notebook 02 ("EASE & ALS", section "EASE: the closed form"); the notebook shows
:func:`gram_matrix` and :func:`ease_weights` with ``inspect.getsource``.

The model is an item-item weight matrix ``B`` (``n_items × n_items``) that reconstructs each
user's row of the interaction matrix ``X`` (``n_users × n_items``) from the user's *other* items:

    min_B  ‖X − X·B‖²_F + λ·‖B‖²_F     subject to  diag(B) = 0.

With a Lagrange multiplier for the zero-diagonal constraint the solution is

    G = XᵀX,   P = (G + λI)⁻¹,   B = I − P·diag(1 / diag(P)),

i.e. ``B_ij = −P_ij / P_jj`` for ``i ≠ j`` and ``B_jj = 0``; a user with history row ``x_u`` gets
the scores ``x_u · B``.
"""

from __future__ import annotations

import math
from numbers import Real

import numpy as np
import scipy.sparse as sp
import torch

from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch
from seminar_lib.repro import resolve_device

_NUMPY_DTYPE = {torch.float32: np.float32, torch.float64: np.float64}


def gram_matrix(matrix: sp.csr_matrix, *, binary: bool = True, dtype: torch.dtype = torch.float32,
                device: str | torch.device = "cpu") -> torch.Tensor:
    """The item-item Gram matrix ``G = XᵀX`` (``n_items × n_items``), dense, on ``device``.

    ``G_ij = Σ_u X_ui·X_uj``: with ``binary`` (``X_ui = 1`` for every stored pair) it counts the
    users who interacted with both ``i`` and ``j`` (``G_ii`` is the popularity of ``i``); otherwise
    it sums products of the stored weights. The product is taken on the sparse ``matrix``
    (``n_users × n_items`` CSR): it costs ``Σ_u nnz(x_u)²`` operations instead of the dense
    ``n_users·n_items²``, and a dense ``X`` is never built.
    """
    X = _as_numpy_dtype(matrix, binary=binary, dtype=_NUMPY_DTYPE[dtype])
    gram = (X.T @ X).toarray()  # scipy's sparse product; only the result is dense
    return torch.from_numpy(gram).to(device=device, dtype=dtype)


def ease_weights(gram: torch.Tensor, regularization: float) -> torch.Tensor:
    """EASE's closed form: ``B = I − P·diag(1/diag(P))`` with ``P = (G + λI)⁻¹``.

    Args:
        gram: ``G = XᵀX``, ``n_items × n_items`` (overwritten with the Cholesky factor).
        regularization: ``λ > 0``; it makes ``G + λI`` positive definite.

    Returns:
        ``B`` (``n_items × n_items``, same dtype and device as ``gram``) with ``B_ij = −P_ij / P_jj``
        and a zero diagonal.

    ``G + λI`` is symmetric positive definite, so ``P`` comes from its Cholesky factor
    ``G + λI = L·Lᵀ`` (``torch.linalg.cholesky`` then ``torch.cholesky_inverse``): about ``n³``
    flops against ``2n³``–``8n³/3`` for a general (LU) inverse, and numerically stabler. ``L`` is written
    over ``gram``, so at most two ``n_items × n_items`` matrices are alive at once.
    """
    gram.diagonal().add_(regularization)                # G + λI, in place
    factor = torch.linalg.cholesky(gram, out=gram)      # L (lower triangular), in gram's memory
    weights = torch.cholesky_inverse(factor)            # P = (L·Lᵀ)⁻¹
    weights.div_(-weights.diagonal().clone())           # B_ij = −P_ij / P_jj (column j by −P_jj)
    weights.diagonal().zero_()                          # B_jj = 1 − P_jj / P_jj = 0
    return weights


def _as_numpy_dtype(matrix: sp.csr_matrix, *, binary: bool, dtype: type) -> sp.csr_matrix:
    """``matrix`` in ``dtype``; with ``binary`` every stored entry becomes 1 (``X_ui = 1[(u, i) seen]``)."""
    out = sp.csr_matrix(matrix, dtype=dtype, copy=True)
    if binary:
        out.data[:] = 1
    return out


class EASE(Recommender):
    """EASE (Steck 2019): item-item weights in closed form, scores ``x_u · B``.

    Fit (see the module docstring for the derivation)::

        G = XᵀX                      (n_items × n_items; X is n_users × n_items, binary by default)
        P = (G + λI)⁻¹               (Cholesky: G + λI = L·Lᵀ)
        B_ij = −P_ij / P_jj,  B_jj = 0

    Scores of a batch of users with histories ``X_b`` (``B_users × n_items``): ``S = X_b · B``
    (``B_users × n_items``) — the paper's formula. RecTools' ``EASEModel`` scores with ``X·Bᵀ``
    instead; ``B`` is not symmetric, so the two differ, though on ml-100k both are within noise
    (nDCG@10 0.207 vs 0.202). We implement the paper.

    EASE scores any user from their history (``scores_from_history``): a user unseen at fit is
    served when ``recommend`` gets their interactions, and gets the same list as a known user with
    the same history.

    Args:
        regularization: ``λ > 0`` added to the diagonal of ``G``; larger values shrink ``B``
            (hundreds for MovieLens-sized data, e.g. 500).
        dtype: ``torch.float32`` (default) or ``torch.float64`` for fit and scores.
        device: ``"auto"`` (CUDA if available), ``"cpu"``, ``"cuda"``, ...
        binary: use ``X_ui = 1`` for every observed pair (default); ``False`` uses the summed
            ``weight`` of the pair, in ``G`` and in the histories scored by ``recommend`` (the
            batch's ``history`` values as the base class gives them). With ``binary`` the histories
            are binarized like the training matrix, so repeated events count once.

    Cost and memory at scale: the fit holds ``G`` dense (``n_items²`` numbers, 4 bytes each in float32:
    1 GB at KION's 15.7k items) plus scipy's sparse ``XᵀX`` while it is built (≤ 12 bytes a nonzero) and
    then ``P`` (another ``n_items²``), and costs about ``n³/3`` (Cholesky) + ``n³`` (inverse) flops — a
    few TFLOP at 15.7k items: minutes of CPU, seconds on a GPU. Scoring is ``nnz(X_b)·n_items`` per batch
    on CPU plus the top-k over ``B_users × n_items``.

    Attributes:
        weights_: ``B``, ``n_items × n_items`` on ``device`` (row ``i``: how item ``i`` in a history
            votes for every item).
    """

    scores_from_history = True

    def __init__(self, regularization: float = 500.0, *, dtype: torch.dtype = torch.float32,
                 device: str | torch.device = "auto", binary: bool = True) -> None:
        if isinstance(regularization, bool) or not isinstance(regularization, Real) \
                or not math.isfinite(regularization) or regularization <= 0:
            raise ValueError(f"regularization must be a finite number > 0 (λ in (XᵀX + λI)⁻¹; e.g. 500 for "
                             f"ml-100k), got {regularization!r}")
        if dtype not in _NUMPY_DTYPE:
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype!r}")
        self.regularization = float(regularization)
        self.dtype = dtype
        self.device = resolve_device(device)
        self.binary = binary

    def _fit(self, data: EncodedInteractions) -> None:
        gram = gram_matrix(data.matrix, binary=self.binary, dtype=self.dtype, device=self.device)
        weights = ease_weights(gram, self.regularization)
        del gram
        # cholesky_inverse returns a column-major matrix; scipy's sparse × dense product would copy it
        # (n_items² numbers) at every batch, so it is made row-major once
        self.weights_ = weights.contiguous()

    def _score(self, batch: UserBatch) -> torch.Tensor:
        """``S = X_b · B`` (``B_users × n_items``), ``X_b`` the batch's history.

        On CPU ``X_b`` stays sparse: the product costs ``nnz(X_b)·n_items`` multiply-adds (a sum of the
        rows of ``B`` a user's items select), where a dense ``X_b`` costs ``B_users·n_items²`` — at KION's
        ~5 items per user among 15.7k, about 3,000 times more. On a GPU the dense product runs on
        tensor cores and wins, so there ``X_b`` is densified on the device.
        """
        history = _as_numpy_dtype(batch.history, binary=self.binary, dtype=_NUMPY_DTYPE[self.dtype])
        if self.device.type == "cpu":
            return torch.from_numpy(np.ascontiguousarray(history @ self.weights_.numpy()))
        dense = torch.from_numpy(history.toarray()).to(self.device)
        return dense @ self.weights_
