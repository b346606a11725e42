"""Deterministic top-k on score matrices (torch), shared by every model's ``recommend``."""

from __future__ import annotations

import torch


def topk_deterministic(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-``k`` of each row of ``scores`` (``B × n_items``), ties broken by the lower item index.

    ``torch.topk`` defines neither the order among equal scores nor, at the k-th place, which of
    several equal scores it keeps. Here the result is sorted by (score descending, index
    ascending); rows whose k-th score is tied with scores left outside the top k are redone
    exactly: every score above the k-th value is taken and the remaining places go to the lowest
    indices holding the k-th value.

    Returns ``(values, indices)``, each ``B × min(k, n_items)``. NaN scores raise ``ValueError``.

    >>> v, i = topk_deterministic(torch.tensor([[1.0, 3.0, 3.0, 2.0, 3.0]]), 2)
    >>> i.tolist(), v.tolist()
    ([[1, 2]], [[3.0, 3.0]])
    """
    if scores.dim() != 2:
        raise ValueError(f"scores must be a 2-D tensor (users × items), got shape {tuple(scores.shape)}")
    k = min(k, scores.shape[-1])
    if k == 0 or scores.shape[0] == 0:
        empty = scores.new_empty((scores.shape[0], k))
        return empty, empty.long()
    # one more than asked: the (k+1)-th value is the largest score left outside, so the k-th place is tied with
    # a score outside exactly when the two are equal — no pass over the whole matrix beyond topk's own
    values, indices = torch.topk(scores, min(k + 1, scores.shape[-1]), dim=-1)
    if torch.isnan(values).any():  # topk ranks NaN above every number: a row with a NaN has it in its top k
        raise ValueError("scores contain NaN; the model produced invalid scores")
    if values.shape[-1] > k:
        ambiguous = values[:, k] == values[:, k - 1]
        values, indices = values[:, :k].contiguous(), indices[:, :k].contiguous()
    else:
        ambiguous = torch.zeros(scores.shape[0], dtype=torch.bool, device=scores.device)
    if ambiguous.any():
        values[ambiguous], indices[ambiguous] = _exact_topk(scores[ambiguous], k)
    by_index = indices.argsort(dim=-1)
    values, indices = values.gather(-1, by_index), indices.gather(-1, by_index)
    order = torch.sort(values, dim=-1, descending=True, stable=True).indices
    return values.gather(-1, order), indices.gather(-1, order)


def _exact_topk(scores: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every score above the k-th value, then the lowest indices holding the k-th value.

    Two ``topk`` calls instead of a sort: one over the scores strictly above the k-th value, one over
    ``−index`` among the tied scores (so the lowest indices come first); row ``r`` takes its
    ``c_r`` scores above the threshold and then ``k − c_r`` tied ones.
    """
    n = scores.shape[-1]
    kth = torch.topk(scores, k, dim=-1).values[:, -1:]
    above = scores > kth
    n_above = above.sum(dim=-1, keepdim=True)
    above_idx = torch.topk(scores.masked_fill(~above, -torch.inf), k, dim=-1).indices
    position = -torch.arange(n, device=scores.device, dtype=torch.float64).expand(scores.shape[0], n)
    tied_idx = torch.topk(position.masked_fill(scores != kth, -torch.inf), k, dim=-1).indices
    j = torch.arange(k, device=scores.device)
    take = torch.where(j < n_above, j, k + j - n_above)
    indices = torch.cat([above_idx, tied_idx], dim=-1).gather(-1, take)
    return scores.gather(-1, indices), indices
