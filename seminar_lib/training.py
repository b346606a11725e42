"""Small pieces shared by the course's torch training loops (MF, DSSM, SASRec).

* :func:`epoch_batches` — a seeded shuffle of ``0..n−1`` cut into index batches on the device;
* :func:`sample_negatives` — uniform negatives that never equal the positive;
* :class:`History` — per-epoch records, as a polars frame for training-curve plots;
* :func:`format_log_line` / :func:`should_log` — the fixed-format line a loop prints every few epochs.

Randomness always comes from an explicit ``torch.Generator`` on the CPU (see
:func:`seminar_lib.repro.torch_generator`); the random numbers are drawn there and the result is
moved to the device, so a run on a GPU sees the same shuffles and negatives as a run on the CPU.
Nothing here touches the global random state, so e.g. validation between epochs cannot change
what training draws next.

Taught in notebook 03 (matrix factorization); reused by the DSSM and SASRec notebooks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

import polars as pl
import torch


def epoch_batches(n: int, batch_size: int, generator: torch.Generator | None = None, *,
                  device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """Indices ``0..n−1`` in batches of ``batch_size`` (the last one may be shorter; nothing is dropped).

    With a ``generator`` the order is a fresh permutation ``torch.randperm(n, generator=generator)``
    (drawn on the generator's device — pass a CPU generator for the same order on every device),
    then moved to ``device``; without one the order is ``0..n−1``. Each call advances the
    generator, so consecutive epochs get different orders, and a re-seeded generator repeats them.

    Yields ``int64`` tensors of shape ``(≤ batch_size,)`` on ``device``; index the training tensors
    with them (``users[idx], items[idx]``).

    >>> gen = torch.Generator().manual_seed(0)
    >>> [b.tolist() for b in epoch_batches(5, 2)]
    [[0, 1], [2, 3], [4]]
    >>> sorted(torch.cat(list(epoch_batches(5, 2, gen))).tolist())
    [0, 1, 2, 3, 4]
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if n < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    if generator is None:
        order = torch.arange(n, device=device)
    else:
        order = torch.randperm(n, generator=generator, device=generator.device).to(device)
    yield from order.split(batch_size)


def sample_negatives(positives: torch.Tensor, n_items: int, n_negatives: int = 1,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Uniform negatives: for each positive item, ``n_negatives`` items drawn uniformly from the
    *other* ``n_items − 1`` items (with replacement across the draws).

    The trick: draw ``r`` uniformly from ``0..n_items−2`` and shift it past the positive,
    ``neg = r + (r ≥ pos)``. The map ``r ↦ r + [r ≥ pos]`` is a bijection from ``{0, …, n−2}`` onto
    ``{0, …, n−1} \ {pos}`` (values below ``pos`` stay, the others move up by one), so every other
    item has probability exactly ``1/(n−1)`` and ``pos`` itself probability 0 — no rejection loop.

    Only the positive of the row is excluded; the user's other items can still be drawn (on
    sparse data such as MovieLens that is a few per cent of the negatives: noise, not bias).

    Args:
        positives: ``(B,)`` item indices in ``0..n_items−1`` (any device).
        n_items: catalogue size (at least 2).
        n_negatives: negatives per positive.
        generator: where the random numbers come from (drawn on its device, then moved to the
            positives' device). None uses the global torch state.

    Returns:
        ``(B, n_negatives)`` ``int64`` on the positives' device.

    >>> gen = torch.Generator().manual_seed(0)
    >>> pos = torch.tensor([0, 1, 2])
    >>> neg = sample_negatives(pos, 3, 4, gen)
    >>> neg.shape, bool((neg != pos[:, None]).all())
    (torch.Size([3, 4]), True)
    """
    if n_items < 2:
        raise ValueError(f"need at least 2 items to sample a negative different from the positive, got {n_items}")
    if n_negatives < 1:
        raise ValueError(f"n_negatives must be positive, got {n_negatives}")
    if positives.dim() != 1:
        raise ValueError(f"positives must be a 1-D tensor of item indices, got shape {tuple(positives.shape)}")
    draw_device = generator.device if generator is not None else positives.device
    r = torch.randint(0, n_items - 1, (positives.shape[0], n_negatives), generator=generator, device=draw_device)
    r = r.to(positives.device)
    return r + (r >= positives[:, None]).long()


def format_log_line(epoch: int, loss: float, **metrics: float | None) -> str:
    """The line a training loop prints: ``epoch   5  loss 0.4321`` (+ ``  name 0.1234`` per metric).

    Fixed width epoch, 4 decimals, no timings — notebooks' printed output is compared
    byte-for-byte (nbval), so the line must be the same on every run. Metrics that are None are left out.

    >>> format_log_line(5, 0.43214)
    'epoch   5  loss 0.4321'
    >>> format_log_line(10, 0.5, **{"val_ndcg@10": 0.12345})
    'epoch  10  loss 0.5000  val_ndcg@10 0.1235'
    """
    parts = [f"epoch {epoch:3d}", f"loss {loss:.4f}"]
    parts += [f"{name} {value:.4f}" for name, value in metrics.items() if value is not None]
    return "  ".join(parts)


def should_log(epoch: int, every: int | None, last_epoch: int) -> bool:
    """Whether epoch ``epoch`` (1-based) is a logging / validation epoch: every ``every``-th one
    and the last; never with ``every`` None or 0.

    >>> [e for e in range(1, 8) if should_log(e, 3, 7)]
    [3, 6, 7]
    """
    if not every:
        return False
    if every < 0:
        raise ValueError(f"log_every must be a positive number of epochs or None, got {every}")
    return epoch % every == 0 or epoch == last_epoch


class History:
    """Per-epoch records of a training run (``epoch``, ``loss``, validation metrics …).

    ``log(epoch, loss=…, val_ndcg@10=…)`` appends a record; :meth:`frame` returns a polars frame
    with one row per record and one column per name ever logged (null where a record lacks it,
    e.g. validation measured only every few epochs — ``frame().drop_nulls(col)`` for its curve).

    >>> h = History()
    >>> h.log(1, loss=0.9)
    >>> h.log(2, loss=0.7, **{"val_ndcg@10": 0.1})
    >>> h.frame().rows()
    [(1, 0.9, None), (2, 0.7, 0.1)]
    """

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def log(self, epoch: int, **values: float | None) -> None:
        """Record ``values`` for ``epoch`` (numbers are stored as Python floats)."""
        self.records.append({"epoch": int(epoch), **{k: None if v is None else float(v) for k, v in values.items()}})

    def __len__(self) -> int:
        return len(self.records)

    @property
    def last(self) -> Mapping[str, Any]:
        """The latest record (empty before the first ``log``)."""
        return self.records[-1] if self.records else {}

    def frame(self) -> pl.DataFrame:
        """``epoch`` (Int64) and one Float64 column per logged name, in first-logged order."""
        names: list[str] = []
        for record in self.records:
            names += [k for k in record if k != "epoch" and k not in names]
        schema = {"epoch": pl.Int64, **dict.fromkeys(names, pl.Float64)}
        rows = [{name: record.get(name) for name in schema} for record in self.records]
        return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def check_finite(loss: float, epoch: int, model: str) -> None:
    """Raise a clear error when training diverged (NaN / inf loss) instead of recommending garbage."""
    if not math.isfinite(loss):
        raise FloatingPointError(f"{model}: the loss became {loss} at epoch {epoch}; lower lr or add weight_decay")
