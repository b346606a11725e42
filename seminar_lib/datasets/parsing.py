"""Helpers that turn malformed files into :class:`SchemaError` messages naming the file and line."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import polars as pl

from seminar_lib.errors import SchemaError


def read_delimited(path: Path, columns: Mapping[str, pl.DataType], *, separator: str, encoding: str = "utf-8",
                   fmt: str = "") -> pl.DataFrame:
    """Read a header-less delimited text file whose rows have exactly ``len(columns)`` fields.

    ``separator`` may have several characters (MovieLens-1M uses ``::``). Fields are parsed with
    the given dtypes (strict); a short row, an extra field or an unparsable value raises
    :class:`SchemaError` with the file name, the line number and the expected format.
    """
    names = list(columns)
    expected = f"{len(names)} fields separated by {separator!r}: {', '.join(names)}"
    text = path.read_bytes().decode(encoding)
    lines = pl.Series("line", text.splitlines(), dtype=pl.String)
    lines = lines.filter(lines.str.len_bytes() > 0)
    if lines.is_empty():
        raise SchemaError(f"{path}: the file is empty; expected {expected}{fmt}")
    n_fields = lines.str.count_matches(separator, literal=True) + 1
    bad = (n_fields != len(names)).arg_true()
    if len(bad):
        i = bad[0]
        raise SchemaError(
            f"{path}, line {i + 1}: {n_fields[i]} field(s) where {expected} are expected{fmt}: {lines[i][:120]!r}"
        )
    raw = lines.str.split_exact(separator, len(names) - 1).struct.rename_fields(names).struct.unnest()
    return cast_columns(raw, columns, path)


def cast_columns(raw: pl.DataFrame, columns: Mapping[str, pl.DataType], path: Path) -> pl.DataFrame:
    """Cast string columns to ``columns``' dtypes; an unparsable value raises :class:`SchemaError`."""
    out = {}
    for name, dtype in columns.items():
        col = raw[name]
        if dtype == pl.String:
            out[name] = col
            continue
        parsed = col.str.strip_chars().cast(dtype, strict=False)
        failed = (parsed.is_null() & col.str.strip_chars().str.len_bytes().gt(0)).arg_true()
        if len(failed):
            i = failed[0]
            raise SchemaError(f"{path}, line {i + 1}: column {name!r} should be {dtype}, got {col[i]!r}")
        out[name] = parsed
    return pl.DataFrame(out)


def read_csv_checked(path: Path, required: Sequence[str], *, schema_overrides: Mapping[str, pl.DataType] | None = None) -> pl.DataFrame:
    """Read a CSV with a header; raise :class:`SchemaError` if required columns are missing or values don't parse."""
    try:
        df = pl.read_csv(path, schema_overrides=schema_overrides, infer_schema_length=10_000)
    except pl.exceptions.PolarsError as exc:
        raise SchemaError(f"{path}: cannot be parsed as CSV with columns {list(required)}: {str(exc).splitlines()[0]}") from exc
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise SchemaError(f"{path}: missing column(s) {missing}; found {df.columns}")
    return df

