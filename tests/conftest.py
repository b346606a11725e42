"""Test set-up: dataset cache at the shared mirror, one torch thread, GPU tests skipped without CUDA."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
# The ML-100K mirror sits beside the checkout (also in CI); an explicit setting wins.
os.environ.setdefault("SEMINAR_DATA_DIR", str(SHARED_DATA))
os.environ.setdefault("TQDM_DISABLE", "1")

import torch  # noqa: E402

torch.set_num_threads(1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def ml100k():
    from seminar_lib.datasets import load

    return load("ml-100k")


@pytest.fixture(scope="session")
def ml100k_dir() -> Path:
    from seminar_lib.datasets import dataset_dir

    path = dataset_dir("ml-100k")
    if not (path / "u.data").is_file():
        pytest.fail(f"the ML-100K mirror is missing at {path}; set SEMINAR_DATA_DIR to the folder holding ml-100k/")
    return path


@pytest.fixture(scope="session")
def synthetic():
    from seminar_lib.datasets import load

    return load("synthetic", n_users=400, n_items=200, seed=0)

# Scripts under fixtures/ run in other environments (e.g. make_reference.py needs rectools).
collect_ignore_glob = ["fixtures/*"]
