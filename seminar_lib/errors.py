"""Exceptions with messages that say what is wrong and how to fix it, and the argument checks every model uses."""

from __future__ import annotations

import math
from collections.abc import Iterable
from numbers import Real

import numpy as np


class SeminarError(Exception):
    """Base class of the library's errors."""


class DatasetError(SeminarError):
    """A dataset cannot be loaded."""


class UnknownDatasetError(DatasetError, KeyError):
    """The name is not in the registry."""

    def __str__(self) -> str:  # KeyError would print the message with quotes
        return str(self.args[0])


class DatasetUnavailableError(DatasetError):
    """No local copy and the download failed (typically: offline)."""


class ChecksumError(DatasetError):
    """A file's SHA-256 differs from the recorded one."""


class SchemaError(SeminarError, ValueError):
    """A table or file does not have the expected columns, types or format."""


class EmptySplitError(SeminarError, ValueError):
    """A split or filter left a part with no rows."""


class UnknownUsersError(SeminarError, KeyError):
    """Recommendations were requested for users the model cannot serve."""

    def __str__(self) -> str:
        return str(self.args[0])


def require_columns(df_columns: Iterable[str], required: Iterable[str], what: str) -> None:
    """Raise :class:`SchemaError` naming the missing columns of the table ``what``."""
    have = list(df_columns)
    missing = [c for c in required if c not in have]
    if missing:
        raise SchemaError(
            f"{what} is missing column(s) {missing}; it has {have}. "
            f"Rename your columns (see seminar_lib.columns.Columns) or select the right table."
        )


# ------------------------------------------------------------------ argument checks (one style for every model)
def check_int(name: str, value: object, *, minimum: int = 1, optional: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is an integer ``≥ minimum`` (``None`` too with ``optional``).

    >>> check_int("epochs", 0, minimum=0)
    >>> check_int("factors", 0)
    Traceback (most recent call last):
    ...
    ValueError: factors must be an integer ≥ 1, got 0
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        what = " or None" if optional else ""
        raise ValueError(f"{name} must be an integer ≥ {minimum}{what}, got {value!r}")


def check_number(name: str, value: object, *, low: float = 0.0, high: float = math.inf, strict_low: bool = False,
                 strict_high: bool = False) -> None:
    """Raise ``ValueError`` unless ``value`` is a real number from ``low`` to ``high`` (each end open
    with ``strict_low`` / ``strict_high``; NaN and booleans are refused).

    >>> check_number("lr", 0.01, strict_low=True)
    >>> check_number("dropout", 1.0, high=1.0, strict_high=True)
    Traceback (most recent call last):
    ...
    ValueError: dropout must be in [0.0, 1.0), got 1.0
    """
    ok = isinstance(value, Real) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value > low if strict_low else value >= low) and (value < high if strict_high else value <= high)
    if not ok:
        interval = f"{'(' if strict_low else '['}{low}, {high}{')' if strict_high else ']'}"
        raise ValueError(f"{name} must be in {interval}, got {value!r}")


def check_choice(name: str, value: object, allowed: Iterable[object]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``.

    >>> check_choice("norm", "group", ("layer", "batch", None))
    Traceback (most recent call last):
    ...
    ValueError: norm must be one of ['layer', 'batch', None], got 'group'
    """
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
