"""The two-tower DSSM (notebook 04, homework 2), split the way :mod:`seminar_lib.models.sequential` is.

* :mod:`~seminar_lib.models.two_tower.losses` — the loss interface (:class:`DSSMLoss`) and registry
  (triplet, BPR, in-batch softmax with logQ), and the tensor formulas;
* :mod:`~seminar_lib.models.two_tower.sampling` — uniform negatives that are not the user's items;
* :mod:`~seminar_lib.models.two_tower.towers` — feature inputs, the MLP tower, :class:`DSSMNet`;
* :mod:`~seminar_lib.models.two_tower.model` — :class:`DSSM`, the recommender.
"""

from seminar_lib.models.two_tower.losses import (LOSSES, DSSMLoss, InBatchSoftmaxLoss, TowerBatch, TripletLoss,
                                                 hard_negative_bpr_loss, in_batch_softmax_loss, in_batch_softmax_loss_unique, loss_name,
                                                 resolve_loss, triplet_loss)
from seminar_lib.models.two_tower.model import DSSM
from seminar_lib.models.two_tower.sampling import contains, pair_keys, ragged_rows, sample_unseen_negatives
from seminar_lib.models.two_tower.towers import DSSMNet, FeatureInput, ResidualBlock, Tower

__all__ = ["DSSM", "DSSMLoss", "DSSMNet", "FeatureInput", "InBatchSoftmaxLoss", "LOSSES", "ResidualBlock",
           "TowerBatch", "Tower", "TripletLoss", "contains", "hard_negative_bpr_loss", "in_batch_softmax_loss", "in_batch_softmax_loss_unique",
           "loss_name", "pair_keys", "ragged_rows", "resolve_loss", "sample_unseen_negatives", "triplet_loss"]
