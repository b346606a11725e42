"""Executing one notebook with papermill: the notebooks of the course, their parameters, the engine that
starts each kernel with its own environment, and :func:`execute_notebook`."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from seminar_lib import cpu_kernels
from seminar_lib.course.signals import KernelRegistry
from seminar_lib.paths import NOTEBOOKS_DIR


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
