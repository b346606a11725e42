"""Loaded by pytest before anything imports numpy or torch, for the tests and for nbval on the notebooks.

Pins the CPU code paths of numpy, scipy, MKL and torch (see :mod:`seminar_lib.cpu_kernels`), in this
process and in the kernels and subprocesses it starts, so the committed outputs reproduce exactly on
any x86-64 machine.

Under nbval, drops progress-bar widget outputs from both sides of every comparison
(:func:`seminar_lib.notebook_outputs.strip_widget_outputs`): a notebook saved from JupyterLab may
keep a bar's widget view and its ``text/plain`` fallback (a bar left on screen, an interrupted run),
which re-execution under ``TQDM_DISABLE=1`` never reproduces.
"""

from __future__ import annotations

from typing import Any

from seminar_lib.cpu_kernels import pin

pin()


def pytest_configure(config: Any) -> None:
    if config.pluginmanager.hasplugin("nbval"):
        _compare_without_widget_outputs()


def _compare_without_widget_outputs() -> None:
    """Wrap nbval's ``IPyNbCell.compare_outputs(test, ref)`` so both lists lose their widget outputs first."""
    from nbval.plugin import IPyNbCell

    from seminar_lib.notebook_outputs import strip_widget_outputs

    compare = IPyNbCell.compare_outputs
    if getattr(compare, "strips_widget_outputs", False):
        return

    def compare_outputs(self: IPyNbCell, test: list[Any], ref: list[Any], skip_compare: Any = None) -> bool:
        return compare(self, strip_widget_outputs(test), strip_widget_outputs(ref), skip_compare)

    compare_outputs.strips_widget_outputs = True  # type: ignore[attr-defined]
    IPyNbCell.compare_outputs = compare_outputs
