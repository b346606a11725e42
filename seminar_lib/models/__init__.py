"""Recommenders following one interface (:class:`~seminar_lib.models.base.Recommender`)."""

from seminar_lib.models.als import ALS
from seminar_lib.models.base import EncodedInteractions, Recommender, UserBatch
from seminar_lib.models.baselines import PersonalThenGlobal, PersonalTopPopular, Random, TopPopular
from seminar_lib.models.two_tower import DSSM
from seminar_lib.models.ease import EASE
from seminar_lib.models.mf import MatrixFactorization
from seminar_lib.models.sequential import BERT4Rec, SASRec

__all__ = [
    "ALS", "BERT4Rec", "DSSM", "EASE", "EncodedInteractions", "MatrixFactorization", "PersonalThenGlobal",
    "PersonalTopPopular", "Random", "Recommender", "SASRec", "TopPopular", "UserBatch",
]
