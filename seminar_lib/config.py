"""Notebook configuration: the ``parameters`` cell's values resolved against named profiles.

Every notebook has a tagged ``parameters`` cell with ``DATASET``, ``PROFILE``, ``DEVICE``, ``SEED``,
``K`` and model overrides that default to ``None`` (meaning "the profile's value"). The next cell
calls :func:`configure`, which seeds everything once, resolves the device and prints the
configuration (no paths, no device: the printed text must be identical on every machine).

Profiles: ``smoke`` (CPU, ml-100k, minutes — what CI and the committed outputs use) and ``full``
(seminar-sized budgets: the instructor's GPU run, and the CPU run on ml-100k whose metrics are
committed in ``results/full-ml-100k/``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from seminar_lib.repro import resolve_device, seed_everything

# CPU threads torch may use, per profile and kind of device. One on a CPU in every profile: a CPU run's
# numbers must be reproducible exactly (the order of parallel reductions changes the last bits, so a
# thread count that followed the machine's cores would tie the recorded results — the committed notebooks,
# ``results/full-ml-100k/`` — to that machine) and, on a busy 2-core machine, two threads are often many
# times slower than one. With an accelerator, ``full`` leaves torch's default for the CPU side (a GPU's
# own sums are not bit-reproducible across machines anyway); None means "torch's default".
PROFILE_THREADS: dict[str, dict[str, int | None]] = {
    "smoke": {"cpu": 1, "accelerator": 1},
    "full": {"cpu": 1, "accelerator": None},
}


def torch_threads(profile: str, device: torch.device | str) -> int | None:
    """The CPU threads :func:`configure` gives torch for ``profile`` on ``device`` (None: torch's default).

    >>> torch_threads("full", "cpu"), torch_threads("full", "cuda"), torch_threads("smoke", "cuda")
    (1, None, 1)
    """
    if profile not in PROFILE_THREADS:
        raise ValueError(f"unknown profile {profile!r}; choose one of {sorted(PROFILE_THREADS)}")
    kind = "cpu" if torch.device(device).type == "cpu" else "accelerator"
    return PROFILE_THREADS[profile][kind]


PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "01_data_and_baselines": {
        "smoke": {"bootstrap": 1000},
        "full": {"bootstrap": 2000},
    },
    "02_ease_and_als": {
        "smoke": {"ease_grid": [25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0],
                  "als_factors": [16, 32, 64], "als_regularization": [1.0, 10.0, 100.0], "als_iterations": 15,
                  "bootstrap": 1000},
        "full": {"ease_grid": [10.0, 25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0],
                 "als_factors": [32, 64, 128, 256], "als_regularization": [0.1, 1.0, 10.0, 100.0],
                 "als_iterations": 30, "bootstrap": 2000},
    },
    "03_matrix_factorization": {
        "smoke": {"epochs": 20, "factors": 64, "n_negatives": 4, "bootstrap": 1000},
        "full": {"epochs": 60, "factors": 128, "n_negatives": 8, "bootstrap": 2000},
    },
    "04_dssm_two_tower": {
        "smoke": {"epochs": 10, "bootstrap": 1000},
        "full": {"epochs": 40, "bootstrap": 2000},
    },
    # 05 and 06 ``full``: budgets that fit the committed CPU run (results/full-ml-100k) on a 2-core machine
    # with one torch thread. Measured there: a SASRec epoch on ml-100k 1.3-1.8 s on a quiet core (6-18 s on
    # a shared one), a validation on every validation event (valid_per_user None) 35-40 s — so 05 validates
    # on at most 5 samples per user. 05 and 06 train the seminars' 100 epochs (softmax peaks near 40, BCE
    # and in-batch + logQ near 85-90, gBCE later), 06's cross-validation 50 per fold.
    "05_sasrec_losses": {
        "smoke": {"epochs": 10, "max_len": 200, "batch_size": 128, "validate_every": 2, "valid_per_user": 5,
                  "test_per_user": 10, "bootstrap": 1000},
        "full": {"epochs": 100, "max_len": 200, "batch_size": 128, "validate_every": 5, "valid_per_user": 5,
                 "test_per_user": None, "bootstrap": 2000},
    },
    "06_bert4rec_and_practice": {
        "smoke": {"epochs": 10, "mask_prob": 0.3, "cv_folds": 2, "cv_days": 14, "cv_epochs": 8, "test_per_user": 10,
                  "bootstrap": 1000},
        "full": {"epochs": 100, "mask_prob": 0.2, "cv_folds": 3, "cv_days": 7, "cv_epochs": 50, "test_per_user": None,
                 "bootstrap": 2000},
    },
}


@dataclass(frozen=True)
class Config:
    """A notebook's resolved settings; ``cfg["epochs"]`` reads a model setting."""

    notebook: str
    dataset: str
    profile: str
    seed: int
    k: int
    device: torch.device
    params: Mapping[str, Any] = field(default_factory=dict)

    def __getitem__(self, name: str) -> Any:
        try:
            return self.params[name]
        except KeyError:
            raise KeyError(f"{self.notebook} has no setting {name!r}; settings: {sorted(self.params)}") from None

    def describe(self) -> str:
        """Multi-line summary without paths or device (so it prints the same everywhere)."""
        lines = [f"notebook  {self.notebook}", f"dataset   {self.dataset}", f"profile   {self.profile}",
                 f"seed      {self.seed}", f"k         {self.k}"]
        lines += [f"{name:<9} {value}" for name, value in sorted(self.params.items())]
        return "\n".join(lines)


def configure(notebook: str, *, dataset: str = "ml-100k", profile: str = "smoke", device: str = "auto",
              seed: int = 42, k: int = 10, print_config: bool = True, **overrides: Any) -> Config:
    """Resolve a notebook's parameters: the profile's settings, then every override that is not None.

    Seeds ``random``/numpy/torch (:func:`~seminar_lib.repro.seed_everything`) and sets torch's CPU
    threads for the profile and device (:func:`torch_threads`: one on a CPU) — call it once per notebook.
    """
    if notebook not in PROFILES:
        raise KeyError(f"unknown notebook {notebook!r}; known: {sorted(PROFILES)}")
    profiles = PROFILES[notebook]
    if profile not in profiles:
        raise ValueError(f"unknown profile {profile!r} for {notebook}; choose one of {sorted(profiles)}")
    params = dict(profiles[profile])
    for name, value in overrides.items():
        key = name.lower()
        if key not in params:
            raise ValueError(f"{notebook} has no setting {name!r}; settings: {sorted(params)}")
        if value is not None:
            params[key] = value
    seed_everything(seed)
    resolved = resolve_device(device)
    threads = torch_threads(profile, resolved)
    if threads is not None:
        torch.set_num_threads(threads)
    cfg = Config(notebook, dataset, profile, seed, k, resolved, params)
    if print_config:
        print(cfg.describe())
    return cfg
