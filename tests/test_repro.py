from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from seminar_lib.repro import resolve_device, seed_everything, torch_generator


def test_seed_everything_makes_draws_repeatable():
    rng = seed_everything(3)
    a = (rng.random(3), torch.rand(3), np.random.random())
    rng = seed_everything(3)
    b = (rng.random(3), torch.rand(3), np.random.random())
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1]) and a[2] == b[2]
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert torch.are_deterministic_algorithms_enabled()


def test_resolve_device():
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")


def test_torch_generator_is_independent_of_global_state():
    g1, g2 = torch_generator(5), torch_generator(5)
    torch.rand(10)  # global draws do not affect the generators
    assert torch.equal(torch.randint(0, 100, (5,), generator=g1), torch.randint(0, 100, (5,), generator=g2))
