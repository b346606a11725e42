"""Determinism and device selection: call :func:`seed_everything` once (a notebook's config cell)."""

from __future__ import annotations

import os
import random

import numpy as np
import torch


def seed_everything(seed: int, strict: bool | None = None) -> np.random.Generator:
    """Seed ``random``, numpy and torch (CPU and every GPU) and make torch deterministic.

    Sets ``CUBLAS_WORKSPACE_CONFIG`` (needed by deterministic cuBLAS on older torch 2.x; it must be
    set before CUDA starts, so this raises if CUDA is already initialised without it), turns off
    cuDNN benchmarking and calls ``torch.use_deterministic_algorithms(True, warn_only=not strict)``;
    ``strict`` defaults to True on CPU-only machines and False with CUDA (some CUDA kernels have no
    deterministic version; they warn instead of failing).

    Returns ``np.random.default_rng(seed)``: pass it explicitly instead of using numpy's global state.
    """
    if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        if torch.cuda.is_available() and torch.cuda.is_initialized():
            raise RuntimeError("seed_everything must run before CUDA is initialised "
                               "(or set CUBLAS_WORKSPACE_CONFIG=:4096:8 in the environment)")
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = ":4096:8"
    random.seed(seed)
    np.random.seed(seed)  # for third-party code that still uses the global state
    torch.manual_seed(seed)  # also seeds every CUDA device
    torch.backends.cudnn.benchmark = False
    if strict is None:
        strict = not torch.cuda.is_available()
    torch.use_deterministic_algorithms(True, warn_only=not strict)
    return np.random.default_rng(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` → ``cuda`` if available, else ``cpu``; other values are checked and returned.

    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} was requested but CUDA is not available; use 'cpu' or 'auto'")
    return torch.device(device)


def torch_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A seeded generator on ``device`` for sampling (negatives, shuffles) independent of global state."""
    return torch.Generator(device=resolve_device(device)).manual_seed(seed)
