"""A run of the course's notebooks into one folder: its manifest ``run.json`` (:class:`RunState`, one
:class:`NotebookResult` a notebook, the environment's facts), each notebook's settings, resuming a run,
and :func:`run_course` itself (workers, GPUs, signals, the leaderboard at the end)."""

from __future__ import annotations

import json
import os
import platform
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from seminar_lib import cpu_kernels
from seminar_lib.course.execute import execute_notebook, notebook_parameters
from seminar_lib.course.gpus import gpu_assignment
from seminar_lib.course.signals import KernelRegistry, RunStopped, _stop_kernels
from seminar_lib.files import atomic_write_text, sha256_file
from seminar_lib.paths import PACKAGE_ROOT
from seminar_lib.record import write_leaderboard

ROOT = PACKAGE_ROOT
PACKAGES = ("seminar_lib", "torch", "polars", "numpy", "scipy", "implicit", "papermill", "nbval", "matplotlib")


@dataclass
class NotebookResult:
    """What happened to one notebook of a run."""

    notebook: str
    status: str = "pending"  # pending → running → ok | failed | interrupted
    seconds: float = 0.0
    error: dict[str, Any] | None = None
    settings: dict[str, Any] | None = None  # the profile's settings with the run's overrides (None: no profile)


@dataclass
class RunState:
    """The manifest ``run.json``, rewritten atomically whenever something changes."""

    folder: Path
    parameters: dict[str, Any]
    status: str = "running"
    started: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    finished: str | None = None
    notebooks: list[NotebookResult] = field(default_factory=list)
    environment: dict[str, Any] = field(default_factory=dict)
    stopped_by: str | None = None  # the signal that interrupted the run (SIGINT, SIGTERM)
    resumed: list[dict[str, Any]] = field(default_factory=list)  # later runs into this folder (``--resume``)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()  # workers save from their threads

    def save(self) -> None:
        with self._lock:
            data = asdict(self)
            data["folder"] = str(self.folder)
            atomic_write_text(self.folder / "run.json", json.dumps(data, indent=1, default=str) + "\n")


def environment_facts(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Versions, device, git commit and the checksums of the dataset's files, for the manifest."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    versions["python"] = platform.python_version()
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    device = str(parameters.get("DEVICE", "auto"))
    return {"git_sha": sha or None, "versions": versions, "device": device_name(device),
            "torch_threads": kernel_torch_threads(str(parameters.get("PROFILE", "smoke")), device),
            "platform": platform.platform(), "cpu_pins": cpu_kernels.pin(dict(os.environ)),
            "dataset_files": dataset_checksums(parameters.get("DATASET", "ml-100k"))}


def kernel_torch_threads(profile: str, device: str) -> int | None:
    """The torch CPU threads each notebook's ``configure`` sets in a run of ``profile`` on ``device``
    (:func:`seminar_lib.config.torch_threads`; None: torch's default), for the manifest."""
    import torch

    from seminar_lib.config import torch_threads

    on_accelerator = device != "cpu" and torch.cuda.is_available()
    return torch_threads(profile, "cuda" if on_accelerator else "cpu")


def device_name(device: str) -> str:
    import torch

    if device != "cpu" and torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"


def dataset_checksums(name: str) -> dict[str, str]:
    """SHA-256 of the dataset's files in the cache (empty for generated or absent datasets)."""
    from seminar_lib.datasets import dataset_dir, get_spec

    try:
        spec = get_spec(name)
    except KeyError:
        return {}
    folder = dataset_dir(name)
    return {rel: sha256_file(folder / rel) for rel in spec.files if (folder / rel).is_file()}


def _run_one(nb: Path, out_dir: Path, params: Mapping[str, Any], timeout: int, result: NotebookResult,
             state: RunState, env: Mapping[str, str] | None = None, registry: KernelRegistry | None = None,
             stopped: RunStopped | None = None) -> None:
    import papermill

    result.status = "running"
    state.save()
    start = time.perf_counter()
    for attempt in (1, 2):
        try:
            execute_notebook(nb, out_dir / nb.name, params, run_dir=out_dir, timeout=timeout,
                             log_path=out_dir / f"{nb.stem}.log", env=env, registry=registry)
            result.status, result.error = "ok", None
            break
        except papermill.PapermillExecutionError as exc:
            result.status = "failed"
            result.error = {"cell": exc.exec_count, "cell_index": exc.cell_index, "ename": exc.ename,
                            "evalue": str(exc.evalue)[:500], "source": exc.source[:500]}
            break
        except Exception as exc:  # kernel start or infrastructure: retried once (papermill #511, #239)
            result.status = "failed"
            result.error = {"ename": type(exc).__name__, "evalue": str(exc)[:500], "attempt": attempt}
            if stopped is not None and stopped.event.is_set():
                break
    if stopped is not None and stopped.event.is_set() and result.status != "ok":
        result.status = "interrupted"
    result.seconds = round(time.perf_counter() - start, 1)
    state.save()


def notebook_settings(notebook: str, params: Mapping[str, Any], accepted: set[str] | None = None) -> dict[str, Any] | None:
    """The settings ``configure`` will resolve in ``notebook`` for a run with ``params``: its profile's
    (:data:`seminar_lib.config.PROFILES`) with every parameter the notebook accepts (``accepted``; all
    when None) whose lower-case name is a setting put on top, e.g. ``-p EPOCHS=2``. None for a notebook
    without profiles. Kept in ``run.json`` so a run says which budget produced its numbers even after
    the profiles change.

    >>> notebook_settings("03_matrix_factorization", {"PROFILE": "full", "EPOCHS": 2})["epochs"]
    2
    """
    from seminar_lib.config import PROFILES

    profiles = PROFILES.get(notebook)
    profile = str(params.get("PROFILE", "smoke"))
    if profiles is None or profile not in profiles:
        return None
    settings = dict(profiles[profile])
    for name, value in params.items():
        if (accepted is None or name in accepted) and name.lower() in settings and value is not None:
            settings[name.lower()] = value
    return settings


def _resumed_state(out_dir: Path, params: Mapping[str, Any], fresh: list[NotebookResult]) -> RunState:
    """The manifest of the earlier run in ``out_dir`` with the entries of ``fresh``'s notebooks replaced
    by ``fresh`` (the others kept as they were), for ``run_course(..., resume=True)``."""
    path = out_dir / "run.json"
    if not path.is_file():
        raise FileNotFoundError(f"--resume needs an earlier run in {out_dir}, but it has no run.json")
    earlier = json.loads(path.read_text())
    if earlier.get("status") == "running":
        raise ValueError(f"{path} says the run is still running; wait for it to end (or, if its runner was killed, "
                         "set its status to \"interrupted\") before resuming it")
    if earlier.get("parameters") != dict(params):
        raise ValueError(f"--resume runs with the earlier run's parameters {earlier.get('parameters')}, "
                         f"got {dict(params)}: one folder holds the results of one set of parameters")
    names = {r.notebook for r in fresh}
    kept = [NotebookResult(**entry) for entry in earlier.get("notebooks", []) if entry["notebook"] not in names]
    state = RunState(out_dir, dict(params), notebooks=sorted([*kept, *fresh], key=lambda r: r.notebook),
                     started=earlier["started"], environment=earlier.get("environment", {}),
                     resumed=list(earlier.get("resumed", [])))
    for r in fresh:  # a notebook that fails this time must not keep its earlier numbers in the leaderboard
        (out_dir / f"{r.notebook}.metrics.json").unlink(missing_ok=True)
    return state


def run_course(notebooks: Sequence[Path], params: Mapping[str, Any], out_dir: Path, *, workers: int = 1,
               timeout: int = 1800, echo: bool = True, grace: float = 10.0, resume: bool = False) -> RunState:
    """Execute ``notebooks`` into a new ``out_dir`` (which must not exist) and write the leaderboard.

    With ``resume``, ``out_dir`` holds an earlier run (not running, the same ``params``): the selected
    notebooks are run again into it — their entries in ``run.json`` replaced, the other notebooks' kept,
    ``resumed`` saying when, which notebooks and at which commit — and the leaderboard is rewritten from
    every notebook's metrics in the folder. For rerunning a notebook that failed, or running a long
    run's notebooks in another order (e.g. ``--notebooks 05 06``, then ``--notebooks 01 02 03 04 --resume``).

    With ``workers > 1`` notebooks run concurrently, each in its own kernel with its own environment;
    on a CUDA run each worker gets its own GPU (:func:`gpu_assignment`). Called from the main thread,
    the run can be stopped: ``SIGINT`` (Ctrl-C) or ``SIGTERM`` interrupts the running kernels, kills
    any still alive after ``grace`` seconds (at once on a second signal), marks the run and the notebooks
    that were running ``interrupted`` (``run.json``: ``"stopped_by"`` names the signal) and returns; the
    CLI then exits with ``128 + signal`` (130 / 143).
    """
    accepted = {nb: set(notebook_parameters(nb)) for nb in notebooks}
    unknown = sorted(set(params) - set().union(*accepted.values()))
    if unknown:
        raise ValueError(f"no selected notebook has the parameter(s) {unknown}; "
                         f"parameters: {sorted(set().union(*accepted.values()))}")
    workers = max(1, workers)
    fresh = [NotebookResult(nb.stem, settings=notebook_settings(nb.stem, params, accepted[nb])) for nb in notebooks]
    gpus, note = gpu_assignment(workers, str(params.get("DEVICE", "auto")))
    if resume:
        state = _resumed_state(out_dir, params, fresh)
        facts = environment_facts(params)
        state.resumed.append({"started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                              "notebooks": [r.notebook for r in fresh], "git_sha": facts["git_sha"],
                              "device": facts["device"], "torch_threads": facts["torch_threads"]})
        state.status, state.finished, state.stopped_by = "running", None, None
    else:
        out_dir.mkdir(parents=True, exist_ok=False)  # never overwrite an earlier run
        state = RunState(out_dir, dict(params), notebooks=fresh)
        state.environment = environment_facts(params)
        state.environment["worker_gpus"] = gpus
    if note:
        state.environment["note"] = note
        if echo:
            print(f"note: {note}", flush=True)
    state.save()
    results = dict(zip(notebooks, fresh))
    registry, stopped = KernelRegistry(), RunStopped()
    free_slots: queue.Queue[int] = queue.Queue()
    for slot in range(workers):
        free_slots.put(slot)

    def one(nb: Path) -> None:
        if stopped.event.is_set():
            return
        own = {name: value for name, value in params.items() if name in accepted[nb]}  # e.g. EPOCHS: only where defined
        slot = free_slots.get()
        try:
            env = {"CUDA_VISIBLE_DEVICES": gpus[slot]} if gpus[slot] is not None else None
            if echo and workers == 1:
                print(f"[{notebooks.index(nb) + 1}/{len(notebooks)}] {nb.stem}: running", flush=True)
            _run_one(nb, out_dir, own, timeout, results[nb], state, env, registry, stopped)
        finally:
            free_slots.put(slot)
        if echo:
            r = results[nb]
            where = f" at cell {r.error.get('cell')}: {r.error['ename']}: {r.error['evalue'][:200]}" if r.error else ""
            print(f"[{notebooks.index(nb) + 1}/{len(notebooks)}] {nb.stem}: {r.status} in {r.seconds:.0f} s{where}",
                  flush=True)

    handlers = {}
    if threading.current_thread() is threading.main_thread():
        handlers = {sig: signal.signal(sig, stopped) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="notebook") as pool:
            pending: set[Future] = {pool.submit(one, nb) for nb in notebooks}
            while pending and not stopped.event.is_set():
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                for future in done:
                    future.result()  # a failure of the runner itself (not of a notebook) ends the run
            if stopped.event.is_set():
                _stop_kernels(registry, stopped, grace)
                for future in pending:
                    future.cancel()
        if stopped.event.is_set():
            state.status = "interrupted"
            state.stopped_by = signal.Signals(stopped.signum).name
        else:
            write_leaderboard(out_dir, k=int(params.get("K", 10)))
            state.status = "failed" if any(r.status != "ok" for r in state.notebooks) else "complete"
    except BaseException:
        state.status = "interrupted"
        stopped.event.set()
        registry.signal_all(signal.SIGKILL)
        raise
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        state.finished = datetime.now(timezone.utc).isoformat(timespec="seconds")
        state.save()
    return state
