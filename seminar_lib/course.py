"""Run the course's notebooks with papermill: the instructor's batch run and the committed outputs.

    python -m seminar_lib.course run                              # smoke profile into runs/<time>-smoke/
    python -m seminar_lib.course run --profile full --dataset ml-1m --device cuda
    python -m seminar_lib.course run --notebooks 01 03 -p EPOCHS=5
    python -m seminar_lib.course run --write-back                 # regenerate the committed notebooks
    python -m seminar_lib.course write-back homework/*/private/reference/*.ipynb   # … or any given ones

A run folder holds the executed notebooks, one log per notebook, the recorded metrics
(``<notebook>.metrics.json``), the leaderboard (``leaderboard.csv`` / ``.md`` / ``.png``) and the
manifest ``run.json`` (parameters, versions, device, dataset checksums, per-notebook status and
durations). ``run.json`` says ``"status": "running"`` until the run ends, so an interrupted run is
recognisably partial; each file in it is written atomically. A failing notebook is reported with
its error cell and the others still run; the command exits non-zero if anything failed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import queue
import signal
import subprocess
import threading
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from seminar_lib import cpu_kernels
from seminar_lib.files import atomic_write_text, sha256_file
from seminar_lib.paths import NOTEBOOKS_DIR, PACKAGE_ROOT
from seminar_lib.record import write_leaderboard

ROOT = PACKAGE_ROOT
COMMON_PARAMETERS = ("DATASET", "PROFILE", "DEVICE", "SEED", "K")
PACKAGES = ("seminar_lib", "torch", "polars", "numpy", "scipy", "implicit", "papermill", "nbval", "matplotlib")


# ----------------------------------------------------------------------------------------- notebooks
def list_notebooks(names: Sequence[str] | None = None, folder: Path = NOTEBOOKS_DIR) -> list[Path]:
    """The course notebooks (``NN_*.ipynb``) in order; ``names`` selects by prefix, e.g. ``["01", "03"]``."""
    found = sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return found
    def matches(p: Path, n: str) -> bool:
        return p.stem == n or p.stem.startswith(f"{n}_")
    unknown = [n for n in names if not any(matches(p, n) for p in found)]
    if unknown:
        raise ValueError(f"no notebook matches {unknown}; notebooks: {[p.stem for p in found]}")
    return [p for p in found if any(matches(p, n) for n in names)]


def notebook_parameters(path: Path) -> dict[str, Any]:
    """The ``parameters`` cell's names and default values (via ``papermill.inspect_notebook``)."""
    import papermill

    return {name: info["default"] for name, info in papermill.inspect_notebook(str(path)).items()}


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


def _start_kernel(kernel_name: str, env: Mapping[str, str], cwd: str) -> Any:
    """A kernel started with its own environment ``env`` (not the runner's ``os.environ``, which threads share)."""
    from jupyter_client import KernelManager

    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(env=dict(env), cwd=cwd)
    return km


def _register_engine() -> str:
    """Register (once) the papermill engine that starts each kernel with its own environment and
    reports it to a :class:`KernelRegistry`; returns its name."""
    from papermill.engines import NBClientEngine, papermill_engines

    name = "seminar_lib"
    if name in papermill_engines._engines:
        return name

    class KernelPerNotebookEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                     stderr_file=None, start_timeout=60, execution_timeout=None, *,
                                     kernel_env: Mapping[str, str], kernel_cwd: str,
                                     registry: KernelRegistry | None = None, **kwargs):
            from papermill.clientwrap import PapermillNotebookClient
            from papermill.log import logger
            from papermill.utils import merge_kwargs, remove_args

            kwargs = remove_args(["input_path", "timeout", "startup_timeout"], **kwargs)
            km = _start_kernel(kernel_name, kernel_env, kernel_cwd)
            if registry is not None:
                registry.add(km)
            client = PapermillNotebookClient(nb_man, km=km, **merge_kwargs(
                kwargs, timeout=execution_timeout, startup_timeout=start_timeout, kernel_name=kernel_name,
                log=logger, log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file))
            try:
                return client.execute()
            finally:
                if client.kc is not None:
                    client.kc.stop_channels()
                km.shutdown_kernel(now=True)
                if registry is not None:
                    registry.discard(km)

    papermill_engines.register(name, KernelPerNotebookEngine)
    return name


def kernel_environment(run_dir: Path | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a notebook's kernel gets: the runner's, progress bars off, the pinned CPU code
    paths of :mod:`seminar_lib.cpu_kernels`, ``SEMINAR_RUN_DIR`` (``run_dir`` made absolute) and ``extra``
    (e.g. ``CUDA_VISIBLE_DEVICES``)."""
    env = {**os.environ, "TQDM_DISABLE": "1", "PYDEVD_DISABLE_FILE_VALIDATION": "1"}
    env.update(cpu_kernels.pin(dict(env)))
    if run_dir is not None:
        # absolute: the kernel runs in the notebook's folder, so a relative --output would put the
        # metrics into notebooks/<output>/ and leave the run's leaderboard empty
        env["SEMINAR_RUN_DIR"] = str(Path(run_dir).resolve())
    env.update(extra or {})
    return env


def execute_notebook(src: Path, dst: Path, parameters: Mapping[str, Any] | None = None, *,
                     run_dir: Path | None = None, timeout: int = 1800, log_path: Path | None = None,
                     env: Mapping[str, str] | None = None, registry: KernelRegistry | None = None) -> Path:
    """Execute ``src`` into ``dst`` with papermill (kernel ``python3``, ``cwd`` = the notebook's folder).

    Unknown parameter names are refused. The kernel gets its own environment (:func:`kernel_environment`:
    progress bars off, the pinned CPU code paths, ``$SEMINAR_RUN_DIR`` = ``run_dir`` where
    ``record_metrics`` writes its JSON, and ``env`` on top), so notebooks run side by side in threads
    never see each other's settings; ``log_path`` receives the cells' outputs as they run; ``timeout``
    is per cell (seconds); ``registry`` learns the kernel while it lives (to stop it on a signal).
    """
    import papermill

    parameters = dict(parameters or {})
    known = notebook_parameters(src)
    unknown = sorted(set(parameters) - set(known))
    if unknown:
        raise ValueError(f"{src.name} has no parameter(s) {unknown}; its parameters: {sorted(known)}")
    with contextlib.ExitStack() as stack:
        log = stack.enter_context(open(log_path, "w")) if log_path is not None else None
        papermill.execute_notebook(str(src), str(dst), parameters=parameters, kernel_name="python3",
                                   progress_bar=False, log_output=log is not None,
                                   stdout_file=log, stderr_file=log, request_save_on_cell_execute=True,
                                   execution_timeout=timeout, engine_name=_register_engine(),
                                   kernel_env=kernel_environment(run_dir, env), kernel_cwd=str(src.parent),
                                   registry=registry)
    return dst


def normalize_notebook(nb: dict[str, Any]) -> dict[str, Any]:
    """The form JupyterLab itself writes, without what differs between runs; opening and saving the
    result in JupyterLab (with the course kernel) changes no byte.

    Dropped: papermill's metadata, execution timings, empty tags, saved widget state. Rewritten as
    JupyterLab rewrites them on open or save:

    * ``metadata.kernelspec``: the course kernel's name, display name and language
      (:data:`seminar_lib.cpu_kernels.KERNEL_NAME`, :data:`~seminar_lib.cpu_kernels.KERNEL_DISPLAY_NAME`),
      which JupyterLab copies from the kernel it starts; ``language_info`` stays as the kernel
      reported it (version included: JupyterLab writes the kernel's own);
    * consecutive ``stream`` outputs of one stream are merged into one (JupyterLab's output area does
      so when it loads them);
    * a float with an integral value inside a JSON output is written as an int (``0.0`` → ``0``:
      JavaScript has one number type and prints it without the fraction);
    * ``nbformat_minor`` at least 5, keys sorted (as ``nbformat`` writes files).
    """
    meta = nb.setdefault("metadata", {})
    meta.pop("papermill", None)
    meta.pop("widgets", None)
    meta["kernelspec"] = {"display_name": cpu_kernels.KERNEL_DISPLAY_NAME, "language": "python",
                          "name": cpu_kernels.KERNEL_NAME}
    nb["nbformat"], nb["nbformat_minor"] = 4, max(5, int(nb.get("nbformat_minor", 5)))
    for cell in nb.get("cells", []):
        cm = cell.setdefault("metadata", {})
        cm.pop("papermill", None)
        cm.pop("execution", None)
        if not cm.get("tags", True):
            cm.pop("tags")
        if cell.get("cell_type") == "code":
            cell["outputs"] = [_as_javascript_writes(o) for o in _merge_streams(cell.get("outputs", []))]
    return _sorted_keys(nb)


def _merge_streams(outputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive ``stream`` outputs of the same ``name`` as one output (text lines concatenated)."""
    merged: list[dict[str, Any]] = []
    for output in outputs:
        previous = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and previous is not None
                and previous.get("output_type") == "stream" and previous.get("name") == output.get("name")):
            text = "".join(_lines(previous["text"])) + "".join(_lines(output["text"]))
            merged[-1] = {**previous, "text": text.splitlines(keepends=True)}
        else:
            merged.append(output)
    return merged


def _lines(text: str | list[str]) -> list[str]:
    return [text] if isinstance(text, str) else list(text)


def _as_javascript_writes(value: Any) -> Any:
    """``value`` with every integral float (within JavaScript's exact integers, 2**53) as an int."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    if isinstance(value, dict):
        return {k: _as_javascript_writes(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_javascript_writes(v) for v in value]
    return value


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


def write_back(path: Path, timeout: int = 1800) -> float:
    """Re-execute ``path`` with its defaults and replace it with the normalised result. Returns seconds."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / path.name
        execute_notebook(path, out, {}, timeout=timeout)
        nb = normalize_notebook(json.loads(out.read_text()))
        atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------- runs
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


def _stop_kernels(registry: KernelRegistry, stopped: RunStopped, grace: float) -> None:
    """Interrupt every live kernel (the running cell raises ``KeyboardInterrupt``, papermill stops the
    notebook and shuts its kernel down); kill those still alive after ``grace`` seconds or a second signal."""
    registry.signal_all(signal.SIGINT)
    deadline = time.monotonic() + grace
    while len(registry) and time.monotonic() < deadline and stopped.count < 2:
        time.sleep(0.1)
    if len(registry):
        registry.signal_all(signal.SIGKILL)


# -------------------------------------------------------------------------------------------- CLI
def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.course", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="execute notebooks in order into a new run folder")
    r.add_argument("--notebooks", nargs="*", help="prefixes such as 01 03 (default: all)")
    r.add_argument("--dataset", help="e.g. ml-100k, ml-1m, kion, synthetic")
    r.add_argument("--profile", choices=["smoke", "full"])
    r.add_argument("--device", help="auto, cpu or cuda")
    r.add_argument("--seed", type=int)
    r.add_argument("--k", type=int)
    r.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE",
                   help="extra papermill parameter (JSON value), e.g. -p EPOCHS=50")
    r.add_argument("--workers", type=int, default=1, help="notebooks run at once (default 1: one GPU)")
    r.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    r.add_argument("--output", type=Path, help="run folder (default runs/<time>-<profile>; must not exist)")
    r.add_argument("--resume", action="store_true",
                   help="run the selected notebooks into the existing run folder --output (same parameters): "
                        "their results replaced, the other notebooks' kept, the leaderboard rewritten")
    r.add_argument("--notebooks-dir", type=Path, default=NOTEBOOKS_DIR)
    r.add_argument("--write-back", action="store_true", help="regenerate the committed notebooks in place")
    w = sub.add_parser("write-back", help="re-execute the given notebooks with their defaults, in place")
    w.add_argument("paths", nargs="+", type=Path, help="notebooks, e.g. homework/*/private/reference/*.ipynb")
    w.add_argument("--timeout", type=int, default=1800, help="seconds per cell")
    args = parser.parse_args(argv)

    if args.command == "write-back":
        for path in args.paths:
            if path.suffix != ".ipynb" or not path.is_file():
                parser.error(f"{path} is not a notebook file")
            print(f"{path}: written back in {write_back(path, args.timeout):.0f} s", flush=True)
        return 0

    notebooks = list_notebooks(args.notebooks, args.notebooks_dir)
    params: dict[str, Any] = {name: getattr(args, name.lower()) for name in COMMON_PARAMETERS
                              if getattr(args, name.lower()) is not None}
    for item in args.parameter:
        name, sep, value = item.partition("=")
        if not sep:
            parser.error(f"-p expects NAME=VALUE, got {item!r}")
        params[name] = _parse_value(value)
    if args.write_back:
        if params:
            parser.error("--write-back regenerates the committed notebooks with their own defaults; "
                         "do not pass parameters with it")
        for nb in notebooks:
            print(f"{nb.name}: written back in {write_back(nb, args.timeout):.0f} s", flush=True)
        return 0
    if args.resume and args.output is None:
        parser.error("--resume needs --output: the run folder to resume")
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    out_dir = args.output or ROOT / "runs" / f"{stamp}-{params.get('PROFILE', 'smoke')}"
    state = run_course(notebooks, params, out_dir, workers=args.workers, timeout=args.timeout, resume=args.resume)
    if state.stopped_by is not None:
        running = [r.notebook for r in state.notebooks if r.status == "interrupted"]
        print(f"interrupted by {state.stopped_by}" + (f" while running {', '.join(running)}" if running else "")
              + f"; no kernel is left running\nrun folder: {out_dir}", flush=True)
        return 128 + int(signal.Signals[state.stopped_by])
    failed = [r.notebook for r in state.notebooks if r.status != "ok"]
    print(f"{state.status}: {len(state.notebooks) - len(failed)}/{len(state.notebooks)} notebooks ok"
          + (f"; failed: {', '.join(failed)}" if failed else "") + f"\nrun folder: {out_dir}")
    board = out_dir / "leaderboard.md"
    if board.is_file():
        print(board.read_text())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
