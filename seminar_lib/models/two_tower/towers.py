r"""The two towers and their input layers (the network of :class:`~seminar_lib.models.two_tower.DSSM`).

**Inputs.** Features come from :mod:`seminar_lib.features` (looked up by id), either as the
one-hot / multi-hot vector itself (``features="onehot"``: the tower's first ``Linear`` acts on it,
as in the original seminar) or as a sum of learned token embeddings (``features="embedding"``:
``EmbeddingBag``; the same function family, computed without the zeros). The user's history is a
bag of items :math:`H_u` (each distinct item once), pooled into a vector
:math:`h_u = \frac{1}{|H_u|}\sum_{j \in H_u} W_j`:

* ``history="bag"`` — :math:`W` (``n_items × embedding_dim``) is the user tower's own matrix. This is
  the original seminar's input, the normalized bag vector :math:`x_u = \mathbb 1_{H_u}/|H_u|` times a ``Linear``
  layer, :math:`h_u = x_u W`, computed sparsely (the original seminar built ``x`` as a dense ``users × items``
  float64 matrix: ≈22 GB on KION);
* ``history="embedding"`` — :math:`W` is the item tower's item-id embedding table (tied weights:
  the history and the candidates live in one learned item space);
* ``history="none"`` — features only.

**Hooks** (homework 2) swap parts of the network for your own modules, with the training loop,
sampling and scoring unchanged: ``features=factory`` builds each feature input layer as
``factory(size, embedding_dim)`` (a module ``forward(index (n, L), weight (n, L)) → (n,
embedding_dim)``, like :class:`FeatureInput`'s ``EmbeddingBag``), and ``tower=factory`` builds both
towers as ``factory(in_dim, out_dim)`` (a module ``(B, in_dim) → (B, out_dim)``) instead of :class:`Tower`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seminar_lib.features import EncodedFeatures, embedding_bag
from seminar_lib.models.dropout import Dropout


class ResidualBlock(nn.Module):
    """``x + Dropout(Linear₂(ReLU(Linear₁(Norm(x)))))`` — two layers of their own (pre-norm).
    (The original seminar's "residual" added ``relu(fc2(x))`` to ``x = relu(fc2(...))``: one layer applied twice.)"""

    def __init__(self, dim: int, norm: str | None, dropout: float) -> None:
        super().__init__()
        self.norm = _norm(norm, dim)
        self.inner = nn.Linear(dim, dim)
        self.outer = nn.Linear(dim, dim)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.dropout(self.outer(F.relu(self.inner(self.norm(x)))))


def _norm(norm: str | None, dim: int) -> nn.Module:
    if norm == "layer":
        return nn.LayerNorm(dim)
    if norm == "batch":
        return nn.BatchNorm1d(dim)
    return nn.Identity()


class Tower(nn.Module):
    """An MLP ``in_dim → hidden[0] → … → out_dim``: each hidden layer is
    ``Linear → Norm → ReLU → Dropout``; then ``residual_blocks`` :class:`ResidualBlock` s; then a
    final ``Linear``. ``norm``: ``"layer"``, ``"batch"`` or None. Shapes: ``(B, in_dim) → (B, out_dim)``."""

    def __init__(self, in_dim: int, hidden: Sequence[int], out_dim: int, *, dropout: float = 0.0,
                 norm: str | None = "layer", residual_blocks: int = 0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_dim
        for h in hidden:
            layers += [nn.Linear(width, h), _norm(norm, h), nn.ReLU(), Dropout(dropout)]
            width = h
        layers += [ResidualBlock(width, norm, dropout) for _ in range(residual_blocks)]
        layers.append(nn.Linear(width, out_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


FeatureFactory = Callable[[int, int], nn.Module]
TowerFactory = Callable[[int, int], nn.Module]


class FeatureInput(nn.Module):
    """Turns rows of :class:`~seminar_lib.features.EncodedFeatures` (``index``, ``weight``: ``(B, L)``)
    into a tower's input: ``"onehot"`` → the ``(B, size)`` multi-hot matrix (what the original seminar fed to
    its first ``Linear``); ``"embedding"`` → ``(B, dim)`` sums of learned token embeddings (unknown
    tokens start at 0); a callable ``factory`` → the module ``factory(size, dim)`` (kept as
    ``self.custom``), whose ``forward(index, weight)`` must return ``(B, dim)``. ``index`` holds codes
    ``0..size``: ``size`` is the padding, always with weight 0."""

    def __init__(self, mode: str | FeatureFactory, size: int, dim: int, unknown: Sequence[int],
                 generator: torch.Generator) -> None:
        super().__init__()
        self.size = size
        self.out_dim = size if mode == "onehot" else dim
        self.bag = embedding_bag(size, dim, generator=generator, unknown_codes=unknown) if mode == "embedding" else None
        self.custom = mode(size, dim) if callable(mode) else None
        if self.custom is not None and not isinstance(self.custom, nn.Module):
            raise TypeError(f"features={mode!r} must build a torch.nn.Module, got {type(self.custom).__name__}")

    def forward(self, index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        if self.custom is not None:
            out = self.custom(index, weight)
            if not isinstance(out, torch.Tensor) or out.shape != (index.shape[0], self.out_dim):
                got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
                raise ValueError(f"the feature module {type(self.custom).__name__} must map index {tuple(index.shape)} "
                                 f"to ({index.shape[0]}, {self.out_dim}), got {got}")
            return out
        if self.bag is None:
            x = torch.zeros(index.shape[0], self.size + 1, dtype=weight.dtype, device=index.device)
            return x.scatter_add_(1, index, weight)[:, : self.size]
        return self.bag(index, per_sample_weights=weight)


class DSSMNet(nn.Module):
    r"""The two towers and their input layers (see the module docstring for the inputs).

    ``item_features``: encoded features of every item (row = dense item index), kept as buffers.
    ``features``: ``"embedding"``, ``"onehot"`` or a factory of feature modules (:class:`FeatureInput`);
    ``tower``: None (an MLP :class:`Tower` from ``hidden``, ``dropout``, ``norm``, ``residual_blocks``)
    or a factory ``tower(in_dim, out_dim) → nn.Module`` called for the user tower, then the item tower.
    Token and item-id embeddings start as :math:`\mathcal N(0, 1/d)`; the history table as
    :math:`\mathcal N(0, 1)`, because the history input is a *mean* over ~100 rows (std ≈ 1/√|H|),
    which puts it on the scale of the feature embeddings.
    """

    def __init__(self, *, n_items: int, user_feature_size: int | None, user_unknown: Sequence[int],
                 item_features: EncodedFeatures | None, item_unknown: Sequence[int], features: str | FeatureFactory,
                 history: str, item_ids: bool, embedding_dim: int, hidden: Sequence[int], out_dim: int, dropout: float,
                 norm: str | None, residual_blocks: int, generator: torch.Generator,
                 tower: TowerFactory | None = None) -> None:
        super().__init__()
        e = embedding_dim
        self.history = history
        self.user_features = (FeatureInput(features, user_feature_size, e, user_unknown, generator)
                              if user_feature_size is not None else None)
        self.item_features = (FeatureInput(features, item_features.size, e, item_unknown, generator)
                              if item_features is not None else None)
        self.item_embedding = nn.Embedding(n_items, e) if item_ids else None
        self.history_table = nn.Parameter(torch.empty(n_items, e)) if history == "bag" else None
        with torch.no_grad():
            if self.item_embedding is not None:
                self.item_embedding.weight.copy_(torch.randn(n_items, e, generator=generator) / math.sqrt(e))
            if self.history_table is not None:  # N(0, 1): the mean of |H| rows then has std 1/√|H| ≈ 0.1
                self.history_table.copy_(torch.randn(n_items, e, generator=generator))
        if item_features is not None:
            self.register_buffer("item_index", item_features.index, persistent=False)
            self.register_buffer("item_weight", item_features.weight, persistent=False)
        user_in = ((self.user_features.out_dim if self.user_features is not None else 0)
                   + (e if history != "none" else 0))
        item_in = (e if item_ids else 0) + (self.item_features.out_dim if self.item_features is not None else 0)
        if user_in == 0:
            raise ValueError("the user tower has no input: give user features (user_features= and preset=) "
                             "or a history ('bag' or 'embedding')")
        if item_in == 0:
            raise ValueError("the item tower has no input: set item_ids=True or give item features "
                             "(item_features= and preset=)")
        if tower is None:
            self.user_tower = Tower(user_in, hidden, out_dim, dropout=dropout, norm=norm,
                                    residual_blocks=residual_blocks)
            self.item_tower = Tower(item_in, hidden, out_dim, dropout=dropout, norm=norm,
                                    residual_blocks=residual_blocks)
        else:
            self.user_tower, self.item_tower = tower(user_in, out_dim), tower(item_in, out_dim)
            for side, module in (("user", self.user_tower), ("item", self.item_tower)):
                if not isinstance(module, nn.Module):
                    raise TypeError(f"tower={tower!r} must build a torch.nn.Module, got {type(module).__name__} "
                                    f"for the {side} tower")

    def history_weights(self) -> torch.Tensor:
        """``W`` (``n_items × embedding_dim``) pooled over a user's history."""
        if self.history == "bag":
            return self.history_table
        if self.history == "embedding":
            return self.item_embedding.weight
        raise RuntimeError("this DSSM has no history input")

    def history_sums(self, flat_items: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        r"""``(R, e)``: :math:`\sum_{j \in H_r} W_j` per bag (bags given as ``flat_items`` + ``offsets``)."""
        return F.embedding_bag(flat_items, self.history_weights(), offsets, mode="sum")

    def user_vectors(self, features: EncodedFeatures | None, history: torch.Tensor | None) -> torch.Tensor:
        """User tower: ``(B, out_dim)`` from feature rows (``B`` of them) and pooled histories ``(B, e)``."""
        parts = []
        if self.user_features is not None:
            parts.append(self.user_features(features.index, features.weight))
        if self.history != "none":
            parts.append(history)
        return self.user_tower(torch.cat(parts, dim=1))

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """Item tower: ``(n, out_dim)`` for dense item indices ``items`` (``(n,)``)."""
        parts = []
        if self.item_embedding is not None:
            parts.append(self.item_embedding(items))
        if self.item_features is not None:
            parts.append(self.item_features(self.item_index[items], self.item_weight[items]))
        return self.item_tower(torch.cat(parts, dim=1))
