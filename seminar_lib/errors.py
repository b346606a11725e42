"""Exceptions with messages that say what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable


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
