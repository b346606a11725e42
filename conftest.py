"""Loaded by pytest before anything imports numpy or torch, for the tests and for nbval on the notebooks.

Pins the CPU code paths of numpy, scipy, MKL and torch (see :mod:`seminar_lib.cpu_kernels`), in this
process and in the kernels and subprocesses it starts, so the committed outputs reproduce exactly on
any x86-64 machine.
"""

from seminar_lib.cpu_kernels import pin

pin()
