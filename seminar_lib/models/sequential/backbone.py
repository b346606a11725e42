r"""The transformer backbone shared by SASRec and BERT4Rec: item encoder, positions, encoder blocks.

Notebook 05 (§ backbone) and 06 (§ item features, § bidirectional attention) teach this module.

* :class:`ItemEncoder` — one vector per token: row 0 is the padding (a constant zero), rows
  ``1..n_items`` the items, row ``n_items + 1`` BERT4Rec's ``[MASK]``. An item's vector is its id
  embedding plus, optionally, the mean of the embeddings of its categorical features (an
  ``EmbeddingBag``: e.g. the genres of a movie), so items that share features share part of their
  vector. The same item vectors score the candidates at the output (tied weights): the score of
  item i after position t is :math:`r_{i,t} = \langle F_t, M_i\rangle`.
* learned positional embeddings, indexed from the end of the sequence (0 = the latest event);
* :class:`EncoderBlock` — pre-LayerNorm multi-head self-attention and a GELU feed-forward layer,
  each with a residual connection; attention is ``F.scaled_dot_product_attention``:

  - **causal** (SASRec): position t attends to positions ≤ t only. Batches are right-padded
    (:mod:`~seminar_lib.models.sequential.data`), so pads come after every real position and the
    causal mask alone keeps them out — no padding mask, and the fused causal kernel runs;
  - **bidirectional** (BERT4Rec): every position attends to every real position; a key padding
    mask hides the pads.

The input of the encoder is :math:`\sqrt{d}\,M_{s_t} + P_{pos(t)}` (the item vector scaled as in
the SASRec paper, plus the position), with dropout; a final LayerNorm gives :math:`F_t`.

Speed (CPU): the blocks carry only the real positions, packed (``N × d``); the position-wise layers
never compute on padding, and only attention sees the padded ``B × L`` layout. Together with
length-bucketed batches, slice-wise full softmax and a cheaper dropout mask this trains an ml-100k
epoch ≥ 3× faster than the seminar's code (``bench/sasrec.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from seminar_lib.models.dropout import Dropout


class ItemEncoder(nn.Module):
    """Token vectors ``(n_items + 2) × dim``: padding (zero), items, ``[MASK]``.

    Args:
        n_items: catalogue size.
        dim: embedding size.
        use_ids: learn one free vector per item (else items are described by features only).
        feature_offsets / feature_values: the items' categorical features in CSR form —
            item i has the feature ids ``feature_values[feature_offsets[i]:feature_offsets[i+1]]``
            (``0..n_features−1``); None: no features.
        n_features: number of distinct feature values.
        init_std: standard deviation of the initial vectors.
        generator: CPU generator for the initial vectors.
    """

    def __init__(self, n_items: int, dim: int, *, use_ids: bool = True, feature_offsets: torch.Tensor | None = None,
                 feature_values: torch.Tensor | None = None, n_features: int = 0, init_std: float = 0.02,
                 generator: torch.Generator | None = None) -> None:
        super().__init__()
        if not use_ids and feature_offsets is None:
            raise ValueError("an item encoder needs ids, features or both")
        self.n_items, self.dim = n_items, dim
        # the [MASK] token always has its own free vector; items have one only with use_ids
        rows = n_items + 1 if use_ids else 1
        self.ids = nn.Parameter(init_std * torch.randn(rows, dim, generator=generator))
        self.use_ids = use_ids
        self.features: nn.EmbeddingBag | None = None
        if feature_offsets is not None:
            if feature_values is None or feature_offsets.shape[0] != n_items + 1:
                raise ValueError("feature_offsets must have n_items + 1 entries, with feature_values")
            self.features = nn.EmbeddingBag(max(n_features, 1), dim, mode="mean")
            with torch.no_grad():
                self.features.weight.copy_(init_std * torch.randn(max(n_features, 1), dim, generator=generator))
            self.register_buffer("feature_values", feature_values.long(), persistent=False)
            self.register_buffer("feature_offsets", feature_offsets[:-1].long(), persistent=False)

    def item_vectors(self) -> torch.Tensor:
        """``n_items × dim``: the vectors of the catalogue (id + mean feature embedding)."""
        vectors = self.ids[: self.n_items] if self.use_ids else self.ids.new_zeros(self.n_items, self.dim)
        if self.features is not None:
            vectors = vectors + self.features(self.feature_values, self.feature_offsets)
        return vectors

    def forward(self) -> torch.Tensor:
        """The token table: row 0 zeros (padding), rows ``1..n_items`` :meth:`item_vectors`, then ``[MASK]``."""
        return torch.cat([self.ids.new_zeros(1, self.dim), self.item_vectors(), self.ids[-1:]])


class EncoderBlock(nn.Module):
    """``x + Attn(LN(x))`` then ``x + FFN(LN(x))``, with dropout on each branch's output.

    ``x`` holds the *real* positions only, packed (``N × d``); position-wise layers (LayerNorms,
    projections, the feed-forward network) never touch padding. Attention needs the ``B × L`` layout:
    the projected queries, keys and values are scattered into it (padding left zero) and the result
    is gathered back.
    """

    def __init__(self, dim: int, heads: int, dropout: float, ff_mult: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim ({dim}) must be divisible by heads ({heads})")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.query, self.key, self.value = nn.Linear(dim, dim), nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff_mult * dim), nn.GELU(), nn.Linear(ff_mult * dim, dim))
        self.dropout = Dropout(dropout)
        self.ff_slice = 4096

    def _to_heads(self, x: torch.Tensor, where: torch.Tensor, B: int, L: int) -> torch.Tensor:
        """Packed ``N × d`` → padded ``B × heads × L × d/heads`` (zeros at padding)."""
        d = x.shape[1]
        padded = x.new_zeros(B * L, d).index_copy_(0, where, x)
        return padded.view(B, L, self.heads, d // self.heads).transpose(1, 2)

    def forward(self, x: torch.Tensor, where: torch.Tensor, shape: tuple[int, int], *, causal: bool,
                key_padding: torch.Tensor | None = None) -> torch.Tensor:
        """``x``: ``N × d``, the real positions of a ``B × L`` batch (``shape``) in row-major order;
        ``where``: their flat indices ``0..B·L−1``. ``causal``: position t sees positions ≤ t (pads
        come after every real position, so they are never seen). ``key_padding``: ``B × L``, True at
        padding (hidden from every query) for bidirectional attention."""
        B, L = shape
        d = x.shape[1]
        h = self.norm1(x)
        q, k, v = (self._to_heads(proj(h), where, B, L) for proj in (self.query, self.key, self.value))
        mask = None if key_padding is None else ~key_padding[:, None, None, :]
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal and mask is None)
        attended = attended.transpose(1, 2).reshape(B * L, d).index_select(0, where)
        x = x + self.dropout(self.out(attended))
        h = self.norm2(x)
        # the feed-forward layer in slices of tokens: its 4·d-wide activations stay a few MB each
        ff = torch.cat([self.ff(part) for part in h.split(self.ff_slice)]) if h.shape[0] > self.ff_slice else self.ff(h)
        return x + self.dropout(ff)


class TransformerBackbone(nn.Module):
    """Items → positions → ``layers`` encoder blocks → LayerNorm: ``B × L`` tokens to ``B × L × d``.

    Args:
        item_encoder: the :class:`ItemEncoder` (its item vectors also score the output).
        max_positions: length of the positional table (``max_len``, or ``max_len + 1`` for BERT4Rec).
        heads, layers, dropout: the encoder's shape and dropout (on the input and on every
            residual branch).
        causal: SASRec's unidirectional attention (True) or BERT4Rec's bidirectional (False).
    """

    def __init__(self, item_encoder: ItemEncoder, max_positions: int, *, heads: int = 2, layers: int = 2,
                 dropout: float = 0.2, causal: bool = True, generator: torch.Generator | None = None) -> None:
        super().__init__()
        dim = item_encoder.dim
        self.items = item_encoder
        self.positions = nn.Parameter(item_encoder.ids.new_empty(max_positions, dim))
        with torch.no_grad():
            self.positions.normal_(0.0, 0.02, generator=generator)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(dim)
        self.dropout = Dropout(dropout)
        self.causal = causal
        self.max_positions = max_positions
        if generator is not None:  # the blocks' Linear layers: seeded, independent of the global state
            for block in self.blocks:
                for layer in (block.query, block.key, block.value, block.out, block.ff[0], block.ff[2]):
                    bound = 1.0 / math.sqrt(layer.in_features)
                    with torch.no_grad():
                        layer.weight.uniform_(-bound, bound, generator=generator)
                        layer.bias.uniform_(-bound, bound, generator=generator)

    def encode(self, tokens: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """The real positions only: ``(N × d outputs, their flat indices in B × L)``, row-major."""
        if tokens.shape[1] > self.max_positions:
            raise ValueError(f"sequences of {tokens.shape[1]} tokens exceed the {self.max_positions} positions")
        table = self.items() if table is None else table
        B, L = tokens.shape
        t = torch.arange(L, device=tokens.device)
        real = t[None, :] < lengths[:, None]
        where = real.flatten().nonzero().squeeze(1)
        position = (lengths[:, None] - 1 - t[None, :]).flatten().index_select(0, where)
        x = table[tokens.flatten().index_select(0, where)] * math.sqrt(self.items.dim) + self.positions[position]
        x = self.dropout(x)
        key_padding = None if self.causal else ~real
        for block in self.blocks:
            x = block(x, where, (B, L), causal=self.causal, key_padding=key_padding)
        return self.norm(x), where

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        """``tokens``: right-padded ``B × L``; ``lengths``: ``B`` real tokens per row. ``table``: the
        item encoder's output if already computed this step. Returns ``B × L × d`` (zeros at padding)."""
        out, where = self.encode(tokens, lengths, table)
        B, L = tokens.shape
        return out.new_zeros(B * L, out.shape[1]).index_copy_(0, where, out).view(B, L, -1)
