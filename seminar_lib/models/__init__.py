"""Recommenders following one interface (:class:`~seminar_lib.models.base.Recommender`)."""

from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch
from seminar_lib.models.baselines import TopPopular

__all__ = ["EncodedInteractions", "Recommender", "TopPopular", "UserBatch"]
