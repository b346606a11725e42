"""Which GPU each worker of a run gets (:func:`gpu_assignment`)."""

from __future__ import annotations

import os
from collections.abc import Sequence


def gpu_assignment(workers: int, device: str, visible: Sequence[str] | None = None) -> tuple[list[str | None], str | None]:
    """Which GPU each worker slot gets (``CUDA_VISIBLE_DEVICES`` of its kernels) and a note for the run.

    With ``device="cuda"`` (or ``auto`` where CUDA is present) and ``workers > 1``, slot ``w`` gets GPU
    ``visible[w mod n]`` — ``visible`` defaults to the runner's ``CUDA_VISIBLE_DEVICES`` list, else
    ``0 … device_count − 1``. With fewer GPUs than workers, slots share GPUs and the note says so.
    One worker, or a CPU run, leaves ``CUDA_VISIBLE_DEVICES`` alone (``None`` per slot).
    """
    if workers <= 1 or device == "cpu":
        return [None] * max(workers, 1), None
    if visible is None:
        listed = os.environ.get("CUDA_VISIBLE_DEVICES")
        if listed is not None:
            visible = [d.strip() for d in listed.split(",") if d.strip()]
        else:
            import torch

            visible = [str(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if not visible:
        note = None if device == "auto" else f"--device {device} with {workers} workers, but no GPU is visible"
        return [None] * workers, note
    slots = [visible[w % len(visible)] for w in range(workers)]
    note = None
    if len(visible) < workers:
        note = (f"{workers} workers share {len(visible)} GPU(s) ({', '.join(visible)}): worker w uses GPU "
                f"visible[w mod {len(visible)}]; notebooks on one GPU compete for its memory")
    return slots, note
