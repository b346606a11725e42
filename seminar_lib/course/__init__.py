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

The package's modules: :mod:`~seminar_lib.course.execute` (one notebook through papermill, each kernel
with its own environment), :mod:`~seminar_lib.course.normalize` (the committed form, ``write_back``),
:mod:`~seminar_lib.course.run` (``run_course`` and the manifest), :mod:`~seminar_lib.course.gpus` (a GPU a
worker), :mod:`~seminar_lib.course.signals` (stopping a run and its kernels), :mod:`~seminar_lib.course.cli`
(the command line). Their public names are importable from here.
"""

from seminar_lib.course.cli import COMMON_PARAMETERS, main
from seminar_lib.course.execute import execute_notebook, kernel_environment, list_notebooks, notebook_parameters
from seminar_lib.course.gpus import gpu_assignment
from seminar_lib.course.normalize import normalize_notebook, write_back
from seminar_lib.course.run import (NotebookResult, RunState, dataset_checksums, device_name, environment_facts,
                                    kernel_torch_threads, notebook_settings, run_course)
from seminar_lib.course.signals import KernelRegistry, RunStopped
from seminar_lib.paths import NOTEBOOKS_DIR, PACKAGE_ROOT as ROOT

__all__ = ["COMMON_PARAMETERS", "KernelRegistry", "NOTEBOOKS_DIR", "NotebookResult", "ROOT", "RunState", "RunStopped",
           "dataset_checksums", "device_name", "environment_facts", "execute_notebook", "gpu_assignment",
           "kernel_environment", "kernel_torch_threads", "list_notebooks", "main", "normalize_notebook",
           "notebook_parameters", "notebook_settings", "run_course", "write_back"]
