"""Notebook configuration: profiles, overrides, the smoke profile's thread pin."""

from __future__ import annotations

import pytest

from seminar_lib.config import PROFILES, configure


def test_configure_resolves_profiles_and_overrides(capsys):
    cfg = configure("03_matrix_factorization", profile="smoke", seed=1, epochs=None, factors=8)
    assert cfg["epochs"] == PROFILES["03_matrix_factorization"]["smoke"]["epochs"] and cfg["factors"] == 8
    printed = capsys.readouterr().out
    assert "factors   8" in printed and "cpu" not in printed and "/" not in printed
    with pytest.raises(ValueError, match="no setting 'EPOCH'"):
        configure("03_matrix_factorization", EPOCH=3)
    with pytest.raises(ValueError, match="unknown profile 'tiny'"):
        configure("03_matrix_factorization", profile="tiny")
    with pytest.raises(KeyError, match="has no setting 'lr'"):
        cfg["lr"]


def test_smoke_profile_pins_one_torch_thread():
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        configure("01_data_and_baselines", profile="smoke", print_config=False)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
