r"""One CPU code path for the numerical libraries, so a notebook gives the same numbers on every x86-64 machine.

BLAS and vectorised kernels choose their code path by CPU when they load. OpenBLAS (numpy's and
scipy's, hence ``implicit``'s ALS) runs SkylakeX kernels on an Intel AVX-512 CPU and Haswell kernels
on an AMD one; MKL (torch's BLAS on x86) takes another path on AMD than on Intel; torch's own
kernels and numpy's ufuncs use AVX-512 where it exists and AVX2 where it does not. Each path sums in
its own order, the last bits of a float differ, and a ranking with near ties — or thousands of SGD
steps — can come out differently. Measured on ml-100k (``global_time_split``, fit on
``fit_data("test")``): ``ALS(seed=42)`` scores nDCG@10 0.2087 with OpenBLAS' Haswell kernels and
0.2080 with its SkylakeX ones; EASE's weights differ bit for bit between MKL's default path on AMD
and its AVX2 path.

The committed notebooks are checked *exactly* (nbval) on whatever machine CI or a grader happens to
run, and a student's saved outputs are compared with the grader's re-execution. So every execution
the course makes — the Jupyter kernel ``make setup`` installs, the course runner, the tests and nbval,
the grader — runs each library's AVX2 path, which every x86-64 CPU of the last decade has:

==============================  ==================================  =====================================
variable                        value                               library
==============================  ==================================  =====================================
``OPENBLAS_CORETYPE``           ``Haswell``                         OpenBLAS (numpy, scipy, implicit)
``MKL_CBWR``                    ``AVX2,STRICT``                     MKL (torch's matrix products on x86)
``ATEN_CPU_CAPABILITY``         ``avx2``                            torch's vectorised kernels
``NPY_DISABLE_CPU_FEATURES``    ``X86_V4,AVX512_ICL,AVX512_SPR``    numpy ≥ 2.4's AVX-512 ufunc loops
==============================  ==================================  =====================================

The libraries read these variables when they load, so they must be in a process's environment
before it imports numpy or torch: :func:`pin` puts them into ``os.environ`` (never overriding a value
already set) for the process's children — kernels and subprocesses — and for libraries the process
has not loaded yet. On other machines (ARM, an x86 CPU without AVX2 and FMA, or a platform whose CPU
flags cannot be read) nothing is pinned: the numbers are then reproducible on that machine only.
This module imports neither numpy nor torch.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata

#: The pins of an x86-64 CPU with AVX2 and FMA (numpy's entry only for numpy ≥ 2.4, whose feature names these are).
AVX2_PINS: Mapping[str, str] = {
    "OPENBLAS_CORETYPE": "Haswell",
    "MKL_CBWR": "AVX2,STRICT",
    "ATEN_CPU_CAPABILITY": "avx2",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4,AVX512_ICL,AVX512_SPR",
}


#: The course kernel, as JupyterLab writes it into a notebook's ``metadata.kernelspec`` (with ``language: python``).
KERNEL_NAME = "python3"
KERNEL_DISPLAY_NAME = "Python 3 (recsys course)"


def cpu_flags() -> set[str] | None:
    """The CPU's feature flags in lower case (``avx2``, ``fma`` …), or None where they cannot be read."""
    try:
        if sys.platform.startswith("linux"):
            with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
                for line in f:
                    if line.startswith("flags"):
                        return set(line.partition(":")[2].split())
            return None
        if sys.platform == "darwin":
            out = subprocess.run(["sysctl", "-n", "machdep.cpu.features", "machdep.cpu.leaf7_features"],
                                 capture_output=True, text=True, timeout=5).stdout
            return set(out.lower().split())  # e.g. "fma", "avx2"
    except (OSError, subprocess.SubprocessError):
        return None
    return None


def _numpy_major_minor() -> tuple[int, int] | None:
    try:
        major, minor = metadata.version("numpy").split(".")[:2]
        return int(major), int(minor)
    except (metadata.PackageNotFoundError, ValueError):
        return None


def cpu_pins(flags: set[str] | None = None, machine: str | None = None,
             numpy_version: tuple[int, int] | None = None) -> dict[str, str]:
    """The environment variables that pin this machine's numerical code paths (see the module docstring).

    Arguments default to this machine's CPU flags, ``platform.machine()`` and the installed numpy.

    >>> sorted(cpu_pins({"avx2", "fma", "avx512f"}, "x86_64", (2, 4)))
    ['ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'NPY_DISABLE_CPU_FEATURES', 'OPENBLAS_CORETYPE']
    >>> cpu_pins({"avx2", "fma"}, "x86_64", (1, 26))["MKL_CBWR"], "NPY_DISABLE_CPU_FEATURES" in cpu_pins({"avx2", "fma"}, "x86_64", (1, 26))
    ('AVX2,STRICT', False)
    >>> cpu_pins({"sse4_2"}, "x86_64"), cpu_pins({"avx2", "fma"}, "arm64")
    ({}, {})
    """
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return {}
    flags = cpu_flags() if flags is None else flags
    if not flags or not {"avx2", "fma"} <= flags:
        return {}
    pins = dict(AVX2_PINS)
    numpy_version = numpy_version or _numpy_major_minor()
    if numpy_version is None or numpy_version < (2, 4):
        del pins["NPY_DISABLE_CPU_FEATURES"]  # older numpy names its features otherwise (and warns on unknown ones)
    return pins


def pin(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, str]:
    """Put :func:`cpu_pins` into ``environ`` (default ``os.environ``) where not already set; returns the
    pins now in effect there (an explicit setting of one of these variables wins and is returned)."""
    environ = os.environ if environ is None else environ
    for name, value in cpu_pins().items():
        environ.setdefault(name, value)
    return {name: environ[name] for name in AVX2_PINS if name in environ}


def install_kernelspec(name: str = KERNEL_NAME, display_name: str = KERNEL_DISPLAY_NAME,
                       prefix: str | None = None) -> str:
    """Install the Jupyter kernel of this environment (``sys.prefix`` by default) with the pins in its
    ``env``, so JupyterLab, papermill and the grader run notebooks on the same code paths. Returns
    the kernelspec folder."""
    from ipykernel.kernelspec import install

    return install(kernel_name=name, display_name=display_name, prefix=prefix or sys.prefix, env=cpu_pins())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m seminar_lib.cpu_kernels", description=__doc__.splitlines()[0])
    parser.add_argument("--install-kernel", action="store_true",
                        help="install this environment's 'python3' Jupyter kernel with the pins")
    args = parser.parse_args(argv)
    if args.install_kernel:
        print(f"installed kernel python3 in {install_kernelspec()}")
    pins = cpu_pins()
    print("\n".join(f"{k}={v}" for k, v in pins.items()) or "no pins on this machine (not x86-64 with AVX2 and FMA)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
