"""Datasets in one common shape: ``load(name)`` → :class:`RecDataset`.

Registered: ``ml-100k`` (default), ``ml-1m``, ``kion``, ``ozon`` (user-given folder), ``synthetic``.
The cache folder is ``$SEMINAR_DATA_DIR`` (see :mod:`seminar_lib.datasets.cache`).
"""

from seminar_lib.datasets import kion, movielens, ozon, synthetic  # noqa: F401  (register the datasets)
from seminar_lib.datasets.base import RecDataset, make_interactions, validate_interactions
from seminar_lib.datasets.cache import ENV_VAR, UnverifiedDataWarning, cache_root
from seminar_lib.datasets.registry import REGISTRY, DatasetSpec, available, dataset_dir, get_spec, load, register

__all__ = [
    "ENV_VAR", "REGISTRY", "DatasetSpec", "RecDataset", "UnverifiedDataWarning", "available", "cache_root",
    "dataset_dir", "get_spec", "load", "make_interactions", "register", "validate_interactions",
]
