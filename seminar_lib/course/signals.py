"""Stopping a run: the kernels it started (:class:`KernelRegistry`), the signal that stops it
(:class:`RunStopped`) and how the live kernels are interrupted, then killed (:func:`stop_kernels`)."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any


class KernelRegistry:
    """The kernels a run has started and not yet shut down, so a signal can stop them from the main thread.

    Each kernel runs in its own session (``jupyter_client`` starts it with ``start_new_session``), so a
    Ctrl-C in the terminal does not reach it: the runner interrupts it (``SIGINT`` to its process group,
    the cell raises ``KeyboardInterrupt``) and, if it is still alive after a grace period, kills the group.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kernels: dict[int, Any] = {}

    def add(self, km: Any) -> None:
        with self._lock:
            self._kernels[id(km)] = km

    def discard(self, km: Any) -> None:
        with self._lock:
            self._kernels.pop(id(km), None)

    def signal_all(self, signum: int) -> None:
        """Send ``signum`` to every live kernel's process group."""
        with self._lock:
            kernels = list(self._kernels.values())
        for km in kernels:
            group = getattr(km.provisioner, "pgid", None) or getattr(km.provisioner, "pid", None)
            if group:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(group, signum)

    def __len__(self) -> int:
        with self._lock:
            return len(self._kernels)


class RunStopped:
    """The signal that stops a run (``SIGINT`` from Ctrl-C, ``SIGTERM`` from a batch scheduler), set by the
    handler :func:`run_course` installs in the main thread."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.count = 0
        self.event = threading.Event()

    def __call__(self, signum: int, frame: Any) -> None:
        self.signum = self.signum or signum
        self.count += 1
        self.event.set()


def _stop_kernels(registry: KernelRegistry, stopped: RunStopped, grace: float) -> None:
    """Interrupt every live kernel (the running cell raises ``KeyboardInterrupt``, papermill stops the
    notebook and shuts its kernel down); kill those still alive after ``grace`` seconds or a second signal."""
    registry.signal_all(signal.SIGINT)
    deadline = time.monotonic() + grace
    while len(registry) and time.monotonic() < deadline and stopped.count < 2:
        time.sleep(0.1)
    if len(registry):
        registry.signal_all(signal.SIGKILL)
