"""The one epoch loop (seminar_lib.training.Trainer) and the models that train through it."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from seminar_lib.datasets import load
from seminar_lib.models.two_tower import DSSM
from seminar_lib.models.mf import MatrixFactorization
from seminar_lib.models.sequential import SASRec
from seminar_lib.splits import global_time_split
from seminar_lib.training import Trainer, TrainResult


class Counter(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))


# ---------------------------------------------------------------------------------------- the loop
def test_trainer_stops_after_patience_and_restores_the_best_state(capsys):
    module = Counter()
    scores = iter([0.1, 0.3, 0.2, 0.25, 0.5])

    def run_epoch(epoch: int) -> float:
        with torch.no_grad():
            module.w += 1
        return 1.0 / epoch

    result = Trainer(10, patience=2, log_every=1, name="toy").fit(module, run_epoch, lambda: {"val_ndcg@10": next(scores)})
    assert (result.best_epoch, result.best_value, result.epochs_run, result.stopped_early) == (2, 0.3, 4, True)
    assert result.kept_epoch == 2                                       # the restored one, not the last
    assert module.w.item() == 2.0                                       # weights of epoch 2
    assert result.history.columns == ["epoch", "loss", "val_ndcg@10"] and result.history.height == 4
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "epoch   1  loss 1.0000  val_ndcg@10 0.1000"
    assert out[-1] == "best epoch   2  val_ndcg@10 0.3000  (stopped early)"
    assert len(result.epoch_seconds) == 4


def test_trainer_validates_every_n_epochs_and_raises_on_nan():
    module = Counter()
    calls = []
    result = Trainer(5, validate_every=2, log_every=None).fit(module, lambda e: 1.0,
                                                              lambda: calls.append(1) or {"val_ndcg@10": 0.0})
    assert len(calls) == 3 and result.history["val_ndcg@10"].null_count() == 2   # epochs 2, 4 and the last
    with pytest.raises(FloatingPointError):
        Trainer(3, log_every=None).fit(module, lambda e: float("nan"))


def test_validation_runs_in_eval_mode_without_gradients_and_the_module_ends_in_eval():
    module = Counter()
    seen = []

    def run_epoch(epoch: int) -> float:
        seen.append(("train", module.training, torch.is_grad_enabled()))
        return 1.0

    def validate() -> dict[str, float]:
        seen.append(("valid", module.training, torch.is_grad_enabled()))
        return {"val_ndcg@10": 0.5}

    Trainer(2, log_every=None).fit(module, run_epoch, validate)
    assert seen == [("train", True, True), ("valid", False, False)] * 2
    assert not module.training


# ------------------------------------------------------------------------- one loop for every model
def test_there_is_one_trainer():
    from seminar_lib.models import sequential

    assert sequential.Trainer is Trainer and sequential.TrainResult is TrainResult   # re-exported, not copied
    assert importlib.util.find_spec("seminar_lib.models.sequential.trainer") is None


@pytest.fixture
def trainer_calls(monkeypatch):
    """Every ``Trainer.fit`` call: (the trainer, the module it trained, its result)."""
    calls = []
    fit = Trainer.fit

    def recording_fit(self, module, run_epoch, validate=None):
        result = fit(self, module, run_epoch, validate)
        calls.append((self, module, validate, result))
        return result

    monkeypatch.setattr(Trainer, "fit", recording_fit)
    return calls


def test_mf_dssm_and_sasrec_train_through_the_trainer(synthetic, trainer_calls):
    split = global_time_split(synthetic.interactions)
    options = dict(log_every=None, device="cpu")
    mf = MatrixFactorization("bpr", factors=8, epochs=2, batch_size=512, **options).fit(split.train, valid=split.valid)
    dssm = DSSM(epochs=2, batch_size=256, patience=1, **options).fit(split.train, valid=split.valid)
    seq = load("synthetic", n_users=60, n_items=40, mean_events=10, seed=0).interactions
    sasrec = SASRec(dim=8, heads=1, layers=1, max_len=10, epochs=1, **options).fit(seq)
    assert [module for _, module, _, _ in trainer_calls] == [mf.net_, dssm.net_, sasrec.net_]
    for model, (trainer, _, validate, result) in zip((mf, dssm, sasrec), trainer_calls, strict=True):
        assert trainer.name == model.name
        assert model.train_result_ is result and model.history_ is result.history
        assert model.epoch_seconds_ == result.epoch_seconds
    (mf_trainer, _, mf_validate, mf_result), (dssm_trainer, _, dssm_validate, dssm_result) = trainer_calls[:2]
    assert mf_trainer.patience is None and mf_validate is not None and mf.best_epoch_ == mf_result.best_epoch
    assert dssm_trainer.patience == 1 and dssm_validate is not None and dssm.best_epoch_ == dssm_result.best_epoch


def test_without_validation_the_best_epoch_is_the_last(synthetic):
    split = global_time_split(synthetic.interactions)
    mf = MatrixFactorization("bce", factors=8, epochs=2, batch_size=512, log_every=None, device="cpu").fit(split.train)
    dssm = DSSM(epochs=2, batch_size=256, log_every=None, device="cpu").fit(split.train)
    for model in (mf, dssm):
        assert model.best_epoch_ == model.train_result_.kept_epoch == 2 and model.train_result_.best_epoch is None
        assert model.history_.columns == ["epoch", "loss"]
