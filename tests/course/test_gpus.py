"""A GPU a worker (seminar_lib.course.gpus)."""

from __future__ import annotations

import pytest

from seminar_lib import course


def test_gpu_assignment_gives_each_worker_its_own_gpu_and_says_when_they_must_share():
    assert course.gpu_assignment(2, "cuda", ["0", "1", "2"]) == (["0", "1"], None)
    slots, note = course.gpu_assignment(3, "cuda", ["4", "5"])
    assert slots == ["4", "5", "4"] and "3 workers share 2 GPU(s)" in note
    assert course.gpu_assignment(3, "cpu", ["0", "1", "2"]) == ([None] * 3, None)
    assert course.gpu_assignment(1, "cuda", ["0", "1"]) == ([None], None)  # one worker: the environment decides
    slots, note = course.gpu_assignment(2, "cuda", [])
    assert slots == [None, None] and "no GPU is visible" in note


@pytest.mark.gpu
def test_gpu_assignment_sees_this_machines_gpus(monkeypatch):
    import torch

    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    n = torch.cuda.device_count()
    slots, note = course.gpu_assignment(n + 1, "cuda")
    assert slots == [str(w % n) for w in range(n + 1)] and f"share {n} GPU(s)" in note
