"""The course's torch training: one epoch loop and the small pieces it and the models share.

* :class:`Trainer` — *the* epoch loop of every torch model (MF, DSSM, SASRec, BERT4Rec): epochs,
  periodic validation, early stopping, the best checkpoint, the progress bar and log lines; a model
  supplies only ``run_epoch(epoch) → mean loss`` and ``validate() → {name: value}``;
* :func:`epoch_batches` — a seeded shuffle of ``0..n−1`` cut into index batches on the device;
* :func:`train_batches` — one epoch of optimizer steps over such batches, returning the mean loss
  (the ``run_epoch`` of MF and DSSM);
* :func:`sample_negatives` — uniform negatives that never equal the positive;
* :func:`seeded_torch` and :func:`adam` — the one seeding and optimizer recipe of the torch models;
* :class:`History` — per-epoch records, as a polars frame for training-curve plots;
* :func:`format_log_line` / :func:`should_log` — the fixed-format line a loop prints every few epochs;
* :func:`check_finite` — a clear error when the loss diverges.

Randomness always comes from an explicit ``torch.Generator`` on the CPU (see
:func:`seminar_lib.repro.torch_generator`); the random numbers are drawn there and the result is
moved to the device, so a run on a GPU sees the same shuffles and negatives as a run on the CPU.
Nothing here touches the global random state, so e.g. validation between epochs cannot change
what training draws next.

Taught in notebook 03 (matrix factorization); reused by the DSSM and SASRec notebooks (notebook 05,
§ training, teaches :class:`Trainer`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl
import torch
from torch import nn

from seminar_lib.progress import track


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


def train_batches(batches: Iterable[torch.Tensor], batch_loss: Callable[[torch.Tensor], torch.Tensor],
                  optimizer: torch.optim.Optimizer) -> float:
    """One epoch of optimizer steps: for each index batch ``idx`` (``(B,)``, e.g. from
    :func:`epoch_batches`), ``loss = batch_loss(idx)`` (a scalar mean over the batch's examples), then
    ``zero_grad → backward → step``. Returns the epoch's mean loss per example (each batch weighted by
    its size, so a short last batch counts for what it holds).

    >>> w = torch.nn.Parameter(torch.zeros(()))
    >>> round(train_batches(epoch_batches(3, 2), lambda idx: (w - 1) ** 2, torch.optim.SGD([w], lr=0.5)), 4)
    0.6667
    """
    total: torch.Tensor | None = None
    n = 0
    for idx in batches:
        loss = batch_loss(idx)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if total is None:
            total = torch.zeros((), device=loss.device)
        total += loss.detach() * idx.shape[0]
        n += idx.shape[0]
    return float(total) / n if total is not None else 0.0


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


# ------------------------------------------------------------------------ seeding and the optimizer
@contextlib.contextmanager
def seeded_torch(seed: int, device: torch.device) -> Iterator[None]:
    """Inside the block the global torch random state — the CPU's and, for a CUDA ``device``, that
    device's — is seeded with ``seed``, so dropout and ``nn.Linear``'s default initialisation repeat
    from run to run; after it the global state is what it was (``torch.random.fork_rng``). What a model
    draws on purpose (shuffles, negatives, initial embeddings) comes from its own generator instead.

    >>> with seeded_torch(0, torch.device("cpu")):
    ...     a = torch.rand(2)
    >>> with seeded_torch(0, torch.device("cpu")):
    ...     b = torch.rand(2)
    >>> bool((a == b).all())
    True
    """
    devices = ([device.index if device.index is not None else torch.cuda.current_device()]
               if device.type == "cuda" else [])
    with torch.random.fork_rng(devices=devices):
        torch.default_generator.manual_seed(seed)
        if devices:
            with torch.cuda.device(devices[0]):
                torch.cuda.manual_seed(seed)
        yield


def adam(params: Iterable[nn.Parameter], *, lr: float, weight_decay: float = 0.0,
         betas: tuple[float, float] = (0.9, 0.999), fused: bool = False) -> torch.optim.Adam:
    """``torch.optim.Adam`` over ``params``. With ``fused`` it is the single-kernel implementation where
    torch offers it (CPU since torch 2.4, CUDA; the same update, ~6× less time per step than the
    per-parameter loop on CPU), else the default one. DSSM trains fused; MF and SASRec keep the
    default, whose last bits their recorded numbers were made with.

    >>> w = nn.Parameter(torch.ones(2))
    >>> type(adam([w], lr=0.1, fused=True)).__name__
    'Adam'
    """
    params = list(params)
    if fused:
        try:
            return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas, fused=True)
        except (RuntimeError, TypeError):
            pass
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay, betas=betas)


# ------------------------------------------------------------------------------------ the epoch loop
@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` did: the ``history`` frame, the best validated epoch and value of
    ``monitor`` (None without validation), epochs run, whether it stopped early, and the training
    seconds of each epoch."""

    history: pl.DataFrame
    best_epoch: int | None
    best_value: float | None
    epochs_run: int
    stopped_early: bool
    epoch_seconds: list[float] = field(default_factory=list)

    @property
    def kept_epoch(self) -> int:
        """The epoch whose weights the module holds after :meth:`Trainer.fit`: the best validated one
        (restored), or the last one run when there was no validation."""
        return self.best_epoch if self.best_epoch is not None else self.epochs_run


class Trainer:
    """A generic epoch loop with periodic validation, early stopping and the best checkpoint.

    The one training loop of the course's torch models: :class:`~seminar_lib.models.mf.MatrixFactorization`
    (notebook 03), :class:`~seminar_lib.models.two_tower.DSSM` (04), SASRec and BERT4Rec (05–06; notebook 05,
    § training, teaches it) all train through it. It knows nothing about recommenders: it calls
    ``run_epoch(epoch) → mean loss`` (the model's batches, negatives and optimizer steps) and, every
    ``validate_every`` epochs (and after the last one), ``validate() → {name: value}`` (in ``eval``
    mode, under ``torch.no_grad``). It

    * keeps the weights of the best validation result (a copy of the ``state_dict``), stops after
      ``patience`` validations without improvement of ``monitor``, and restores the best weights at
      the end — the model you get is the one that validated best, not the last one;
    * shows a :func:`~seminar_lib.progress.track` bar over epochs and prints the fixed-format line of
      :func:`format_log_line` every ``log_every`` epochs (and at the stop), then, after a run with
      validation, ``best epoch   N  val_ndcg@10 0.1234`` (``  (stopped early)`` when it stopped),
      so a notebook's printed output is the same on every run;
    * records a :class:`History` (``epoch, loss`` and validation metrics, null on epochs without
      validation) for training-curve plots, and the wall-clock seconds of each epoch's training
      (validation excluded);
    * raises on a NaN / inf loss (:func:`check_finite`).

    Randomness is not its business: ``run_epoch`` draws from the model's own training generator and
    ``validate`` from none (SASRec's validation samples are fixed before training; MF and DSSM
    validate by recommending, which draws nothing), so how often one validates never changes what
    training draws — in the original seminar, the negatives drawn for validation came from the same stream as
    training's.

    Args:
        epochs: the most epochs to run.
        validate_every: validate after every this many epochs (and after the last epoch).
        patience: stop after this many validations in a row without improving ``monitor`` by more
            than ``min_delta``; None: never stop early.
        monitor: the validation metric to maximise (a key of what ``validate`` returns).
        log_every: print a log line every this many epochs (and at the last one); None: silent.
        name: the progress bar's label and the model name in error messages.
    """

    def __init__(self, epochs: int, *, validate_every: int = 1, patience: int | None = None,
                 monitor: str = "val_ndcg@10", min_delta: float = 0.0, log_every: int | None = 1,
                 name: str = "model") -> None:
        if epochs < 0:
            raise ValueError(f"epochs must be non-negative, got {epochs}")
        if validate_every < 1:
            raise ValueError(f"validate_every must be positive, got {validate_every}")
        if patience is not None and patience < 1:
            raise ValueError(f"patience must be positive or None, got {patience}")
        if log_every is not None and log_every < 1:
            raise ValueError(f"log_every must be positive or None, got {log_every}")
        self.epochs, self.validate_every, self.patience = epochs, validate_every, patience
        self.monitor, self.min_delta, self.log_every, self.name = monitor, min_delta, log_every, name

    def fit(self, module: nn.Module, run_epoch: Callable[[int], float],
            validate: Callable[[], Mapping[str, float]] | None = None) -> TrainResult:
        """Train ``module`` with ``run_epoch(epoch)`` (1-based; returns the epoch's mean loss).

        With ``validate``, the best weights (by ``monitor``) are restored into ``module`` at the end.
        ``module`` is left in ``eval`` mode.
        """
        history = History()
        seconds: list[float] = []
        best_value: float | None = None
        best_epoch: int | None = None
        best_state: dict[str, torch.Tensor] | None = None
        bad_validations = 0
        stopped = False
        epoch = 0
        bar = track(range(1, self.epochs + 1), desc=self.name)
        for epoch in bar:
            start = time.perf_counter()
            module.train()
            loss = float(run_epoch(epoch))
            seconds.append(time.perf_counter() - start)
            check_finite(loss, epoch, self.name)
            metrics: dict[str, float | None] = {}
            if validate is not None and should_log(epoch, self.validate_every, self.epochs):
                module.eval()
                with torch.no_grad():
                    metrics = {name: float(value) for name, value in validate().items()}
                if self.monitor not in metrics:
                    raise KeyError(f"validate() returned {sorted(metrics)}, not the monitored {self.monitor!r}")
                value = metrics[self.monitor]
                if best_value is None or value > best_value + self.min_delta:
                    best_value, best_epoch, bad_validations = value, epoch, 0
                    best_state = {k: v.detach().clone() for k, v in module.state_dict().items()}
                else:
                    bad_validations += 1
                stopped = self.patience is not None and bad_validations >= self.patience
            history.log(epoch, loss=loss, **metrics)
            bar.set_postfix(loss=f"{loss:.4f}", refresh=False)
            if should_log(epoch, self.log_every, self.epochs) or (stopped and self.log_every):
                bar.write(format_log_line(epoch, loss, **metrics))
            if stopped:
                break
        bar.close()
        if best_state is not None:
            module.load_state_dict(best_state)
            if self.log_every:
                message = f"best epoch {best_epoch:3d}  {self.monitor} {best_value:.4f}"
                bar.write(message + ("  (stopped early)" if stopped else ""))
        module.eval()
        return TrainResult(history.frame(), best_epoch, best_value, epoch, stopped, seconds)
