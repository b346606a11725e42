"""A generic epoch loop with periodic validation, early stopping and the best checkpoint.

Notebook 05 (§ training) teaches this module; SASRec and BERT4Rec train through it.

:class:`Trainer` knows nothing about recommenders: it calls ``run_epoch(epoch) → mean loss`` and,
every ``validate_every`` epochs (and after the last one), ``validate() → {name: value}``. It

* keeps the weights of the best validation result (a copy of the ``state_dict``), stops after
  ``patience`` validations without improvement of ``monitor``, and restores the best weights at
  the end — the model you get is the one that validated best, not the last one;
* shows a :func:`~seminar_lib.progress.track` bar over epochs and prints the fixed-format line of
  :func:`~seminar_lib.training.format_log_line` every ``log_every`` epochs (and at the stop), so a
  notebook's printed output is the same on every run;
* records a :class:`~seminar_lib.training.History` (``epoch, loss`` and validation metrics, null on
  epochs without validation) for training-curve plots, and the wall-clock seconds of each
  epoch's training (validation excluded);
* raises on a NaN / inf loss (:func:`~seminar_lib.training.check_finite`).

Randomness is not its business: ``run_epoch`` draws from the model's own training generator and
``validate`` from none (its samples are fixed before training), so how often one validates never
changes what training draws — in the seed, the negatives drawn for validation came from the same
stream as training's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl
import torch
from torch import nn

from seminar_lib.progress import track
from seminar_lib.training import History, check_finite, format_log_line, should_log


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


class Trainer:
    """Run epochs; validate, keep the best weights and stop early.

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
