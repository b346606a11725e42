"""Sequential recommenders (notebooks 05–06), split the way RecTools splits them.

* :mod:`~seminar_lib.models.sequential.data` — the data preparator: sequences, right-padded
  batches, SASRec's shifted targets, BERT4Rec's masked targets;
* :mod:`~seminar_lib.models.sequential.backbone` — item encoder (ids + categorical features),
  positions, causal / bidirectional transformer;
* :mod:`~seminar_lib.models.sequential.losses` — the loss registry (BCE, gBCE, full softmax,
  in-batch, in-batch + logQ);
* :class:`SASRec`, :class:`BERT4Rec` — the recommenders (``fit`` / ``recommend`` / ``similar_items``).

They train through :class:`seminar_lib.training.Trainer` (epochs, validation, early stopping, best
checkpoint), the loop MF and DSSM share; ``Trainer`` and ``TrainResult`` are re-exported here, and so
is the next-item protocol the sequential notebooks use, which lives in :mod:`seminar_lib.next_item`
(every model can be scored by it).
"""

from seminar_lib.models.sequential.bert4rec import BERT4Rec
from seminar_lib.models.sequential.losses import LOSSES, LossInputs, SequentialLoss, register_loss
from seminar_lib.models.sequential.sasrec import SASRec
from seminar_lib.next_item import NextItemReport, NextItemSamples, evaluate_next_item, next_item_samples
from seminar_lib.training import Trainer, TrainResult

__all__ = ["BERT4Rec", "LOSSES", "LossInputs", "NextItemReport", "NextItemSamples", "SASRec", "SequentialLoss",
           "TrainResult", "Trainer", "evaluate_next_item", "next_item_samples", "register_loss"]
