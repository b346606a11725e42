"""The pinned CPU code paths: which machines get them, that every place the course executes code applies
them, and that they are in force in this very process (the root conftest pins before numpy loads)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import threadpoolctl
import torch

from seminar_lib import cpu_kernels
from seminar_lib.cpu_kernels import AVX2_PINS, cpu_pins, pin

PINS = cpu_pins()
needs_pins = pytest.mark.skipif(not PINS, reason="this machine is not x86-64 with AVX2 and FMA: nothing is pinned")


def test_pins_only_where_the_avx2_path_exists():
    assert cpu_pins({"avx2", "fma", "avx512f"}, "x86_64", (2, 4)) == dict(AVX2_PINS)
    assert cpu_pins({"avx2", "fma"}, "AMD64", (2, 5)) == dict(AVX2_PINS)           # Windows' name for x86-64
    assert "NPY_DISABLE_CPU_FEATURES" not in cpu_pins({"avx2", "fma"}, "x86_64", (2, 3))
    assert cpu_pins({"avx", "sse4_2"}, "x86_64") == {}      # pre-Haswell CPU: Haswell kernels would not run
    assert cpu_pins({"avx2"}, "x86_64") == {}                # AVX2 without FMA
    assert cpu_pins(set(), "x86_64") == {} and cpu_pins({"avx2", "fma"}, "aarch64") == {}


def test_pin_never_overrides_an_explicit_setting(monkeypatch):
    monkeypatch.setattr(cpu_kernels, "cpu_pins", lambda: dict(AVX2_PINS))
    env = {"OPENBLAS_CORETYPE": "SkylakeX", "PATH": "/bin"}
    assert pin(env) == {**AVX2_PINS, "OPENBLAS_CORETYPE": "SkylakeX"}
    assert env["OPENBLAS_CORETYPE"] == "SkylakeX" and env["MKL_CBWR"] == "AVX2,STRICT" and env["PATH"] == "/bin"
    monkeypatch.setattr(cpu_kernels, "cpu_pins", lambda: {})
    assert pin({"PATH": "/bin"}) == {}


@needs_pins
def test_this_process_runs_the_pinned_paths():
    # set by the root conftest before numpy and torch loaded: otherwise these would be the CPU's own choice
    assert torch.backends.cpu.get_cpu_capability() == "AVX2"
    openblas = [lib for lib in threadpoolctl.threadpool_info() if lib["internal_api"] == "openblas"]
    assert openblas and {lib["architecture"] for lib in openblas} == {"Haswell"}


@needs_pins
def test_the_installed_notebook_kernel_carries_the_pins():
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    assert Path(spec.argv[0]).resolve().parent == Path(sys.executable).resolve().parent, \
        "the python3 kernel is not this environment's: run `make setup`"
    assert spec.env == PINS, "the python3 kernel lacks the CPU pins: run `make setup`"


@needs_pins
def test_the_runner_and_the_grader_pass_the_pins_on(monkeypatch, tmp_path):
    import nbformat

    from seminar_lib import course
    from seminar_lib.grading import notebook as grading_notebook
    from seminar_lib.grading.assignment import load_assignment
    from seminar_lib.grading.grader import ROOT
    from seminar_lib.grading.sandbox import Mounts, StageRun

    for name in AVX2_PINS:
        monkeypatch.delenv(name, raising=False)
    stage_env = {}

    class Recorder:  # the grader's notebook stage hands its environment to the sandbox: record it
        def inside(self, folder, path):
            return str(path)

        def run(self, stage):
            stage_env.update(stage.env)
            return StageRun(1, "", 0.0)

    assignment = load_assignment("hw1_metrics_knn", ROOT / "homework")
    submission = tmp_path / "submission"
    submission.mkdir()
    nbformat.write(nbformat.v4.new_notebook(), submission / assignment.notebook)
    grading_notebook.run_notebook_stage(Recorder(), tmp_path / "scratch", submission, assignment, Mounts(()), None,
                                        ROOT / "seminar_lib" / "nbval_sanitize.cfg")
    assert {k: stage_env[k] for k in PINS} == PINS
    assert course.environment_facts({"DATASET": "synthetic"})["cpu_pins"] == PINS

    seen = {}
    monkeypatch.setattr("seminar_lib.course.execute.notebook_parameters", lambda path: {})
    monkeypatch.setattr("papermill.execute_notebook",  # the kernel's own environment, not the runner's os.environ
                        lambda *a, **kw: seen.update({k: kw["kernel_env"].get(k) for k in PINS}))
    course.execute_notebook(tmp_path / "x.ipynb", tmp_path / "y.ipynb")
    assert seen == PINS
    assert all(name not in os.environ for name in AVX2_PINS)
