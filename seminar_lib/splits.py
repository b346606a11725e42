"""Filters, splits and id encoding — the shared evaluation protocol of the course.

All functions take and return polars frames in the common interactions shape
(``user_id, item_id, timestamp, weight``, see :class:`seminar_lib.columns.Columns`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import EmptySplitError, SchemaError, UnknownUsersError, require_columns

U, I, T = Columns.user, Columns.item, Columns.timestamp


@dataclass(frozen=True)
class Split:
    """Train / validation / test parts of one interactions table.

    ``valid`` is an empty frame when the split has no validation part. ``info`` records how the
    split was made (method, thresholds) for the notebooks' captions.
    """

    train: pl.DataFrame
    valid: pl.DataFrame
    test: pl.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    def parts(self) -> dict[str, pl.DataFrame]:
        return {"train": self.train, "valid": self.valid, "test": self.test}

    def summary(self) -> pl.DataFrame:
        """Rows, users and items of every part, and how many of its users / items are in train."""
        train_users = self.train[U].unique()
        train_items = self.train[I].unique()
        rows = []
        for name, df in self.parts().items():
            rows.append({
                "part": name, "rows": df.height, "users": df[U].n_unique(), "items": df[I].n_unique(),
                "users in train": int(df[U].unique().is_in(train_users.implode()).sum()),
                "items in train": int(df[I].unique().is_in(train_items.implode()).sum()),
            })
        return pl.DataFrame(rows)

    def fit_data(self, part: str = "test") -> pl.DataFrame:
        """What a model is fitted on before it is scored on ``part``: ``train`` for ``"valid"`` (tuning),
        ``train`` + ``valid`` for ``"test"`` (the final numbers, after hyper-parameters are chosen)."""
        if part == "valid":
            return self.train
        if part == "test":
            return pl.concat([self.train, self.valid], how="vertical_relaxed")
        raise ValueError(f"part must be 'valid' or 'test', got {part!r}")

    def warm(self, users: bool = True, items: bool = True) -> Split:
        """Keep only validation / test rows whose user (and item) appear in ``train``.

        This is the "warm" protocol: a model fitted on ``train`` can score every kept row.
        """
        return replace(self,
                       valid=filter_warm(self.valid, self.train, users=users, items=items, allow_empty=True),
                       test=filter_warm(self.test, self.train, users=users, items=items),
                       info={**self.info, "warm_users": users, "warm_items": items})


def _check(df: pl.DataFrame, what: str, cols: tuple[str, ...] = (U, I)) -> None:
    require_columns(df.columns, cols, what)
    if df.is_empty():
        raise EmptySplitError(f"{what} is empty: there is nothing to filter or split; check the previous step")


def k_core(df: pl.DataFrame, k: int = 5, *, user_k: int | None = None, item_k: int | None = None) -> pl.DataFrame:
    """Iterated k-core filter: drop users with < ``user_k`` and items with < ``item_k`` interactions,
    repeatedly, until nothing changes (a fixed point: then every kept user and item has enough).

    ``user_k`` and ``item_k`` default to ``k``. Counts are of rows (repeated pairs count each time).

    >>> df = pl.DataFrame({"user_id": [1, 1, 2, 2, 3], "item_id": [1, 2, 1, 2, 1]})
    >>> k_core(df, 2).sort("user_id", "item_id")["user_id"].to_list()
    [1, 1, 2, 2]
    """
    _check(df, "interactions passed to k_core")
    user_k = k if user_k is None else user_k
    item_k = k if item_k is None else item_k
    while True:
        kept = df.filter((pl.len().over(U) >= user_k) & (pl.len().over(I) >= item_k))
        if kept.height == df.height:
            return kept
        df = kept
        if df.is_empty():
            raise EmptySplitError(f"k_core(user_k={user_k}, item_k={item_k}) removed every interaction; "
                                  "lower the thresholds")


def filter_warm(df: pl.DataFrame, reference: pl.DataFrame, *, users: bool = True, items: bool = True,
                allow_empty: bool = False) -> pl.DataFrame:
    """Rows of ``df`` whose user (if ``users``) and item (if ``items``) occur in ``reference``."""
    require_columns(df.columns, (U, I), "table passed to filter_warm")
    out = df
    if users:
        out = out.filter(pl.col(U).is_in(reference[U].unique().implode()))
    if items:
        out = out.filter(pl.col(I).is_in(reference[I].unique().implode()))
    if out.is_empty() and not df.is_empty() and not allow_empty:
        raise EmptySplitError("no row is warm (every user or item is unseen in the reference part); "
                              "use a split with a longer training period or disable warm filtering")
    return out


def global_time_split(df: pl.DataFrame, valid: float = 0.1, test: float = 0.1) -> Split:
    """Split by global timestamp quantiles: the earliest ``1 − valid − test`` share of events is
    train, the next ``valid`` share validation, the last ``test`` share test.

    With timestamps sorted as ``t_(0) ≤ … ≤ t_(n−1)``, the thresholds are
    ``τ₁ = t_(⌊n(1−valid−test)⌋)`` and ``τ₂ = t_(⌊n(1−test)⌋)``; train is ``t < τ₁``, valid
    ``τ₁ ≤ t < τ₂``, test ``t ≥ τ₂``, so no part sees the future of a later part (events at
    the same instant stay together).
    """
    _check(df, "interactions passed to global_time_split", (U, I, T))
    if not (0 <= valid < 1 and 0 < test < 1 and valid + test < 1):
        raise ValueError(f"need 0 ≤ valid, 0 < test and valid + test < 1; got valid={valid}, test={test}")
    ts = df[T].sort()
    n = ts.len()
    t1, t2 = ts[int(n * (1 - valid - test))], ts[int(n * (1 - test))]
    train = df.filter(pl.col(T) < t1)
    val = df.filter((pl.col(T) >= t1) & (pl.col(T) < t2))
    tst = df.filter(pl.col(T) >= t2)
    for name, part, share in (("train", train, 1 - valid - test), ("test", tst, test)):
        if part.is_empty():
            raise EmptySplitError(f"global_time_split: the {name} part is empty (share {share}); "
                                  "too many events share one timestamp or the table is too small")
    return Split(train, val, tst, {"method": "global_time", "valid": valid, "test": test,
                                   "valid_start": t1, "test_start": t2})


def last_n_days_split(df: pl.DataFrame, test_days: float = 7, valid_days: float = 0) -> Split:
    """Test = the last ``test_days`` days before the latest event; valid = the ``valid_days`` before
    that; train = everything earlier (the KION seminars' split).

    The windows are half-open: test is ``t > t_max − test_days``.
    """
    _check(df, "interactions passed to last_n_days_split", (U, I, T))
    t_max = df[T].max()
    test_start = t_max - timedelta(days=test_days)
    valid_start = test_start - timedelta(days=valid_days)
    train = df.filter(pl.col(T) <= valid_start)
    val = df.filter((pl.col(T) > valid_start) & (pl.col(T) <= test_start))
    tst = df.filter(pl.col(T) > test_start)
    if train.is_empty():
        raise EmptySplitError(f"last_n_days_split: no events before the last {test_days + valid_days} days")
    return Split(train, val, tst, {"method": "last_n_days", "test_days": test_days, "valid_days": valid_days,
                                   "valid_start": valid_start, "test_start": test_start})


def time_range_folds(df: pl.DataFrame, n_folds: int = 3, test_days: float = 7) -> list[Split]:
    """Time-range cross-validation (RecTools' ``TimeRangeSplitter``): the last ``n_folds`` periods of
    ``test_days`` each are test sets, oldest first; fold ``f`` trains on everything before its period.

    Fold ``f`` (0-based) tests on ``(t_max − (n_folds − f)·d, t_max − (n_folds − f − 1)·d]``; its
    validation part is empty. Later folds train on more data, as a model retrained weekly would.
    """
    _check(df, "interactions passed to time_range_folds", (U, I, T))
    if n_folds < 1 or test_days <= 0:
        raise ValueError(f"need n_folds ≥ 1 and test_days > 0, got n_folds={n_folds}, test_days={test_days}")
    t_max = df[T].max()
    folds = []
    for f in range(n_folds):
        start = t_max - timedelta(days=test_days * (n_folds - f))
        end = t_max - timedelta(days=test_days * (n_folds - f - 1))
        train = df.filter(pl.col(T) <= start)
        test = df.filter((pl.col(T) > start) & (pl.col(T) <= end))
        if train.is_empty() or test.is_empty():
            raise EmptySplitError(f"time_range_folds: fold {f} has an empty {'train' if train.is_empty() else 'test'} "
                                  f"part; use fewer folds or a different test_days")
        folds.append(Split(train, df.clear(), test, {"method": "time_range", "fold": f, "test_start": start,
                                                      "test_end": end, "test_days": test_days}))
    return folds


def leave_one_out(df: pl.DataFrame, valid: bool = True, min_train: int = 1) -> Split:
    """Per user: the last event is test, the one before it validation (if ``valid``), the rest train.

    Events are ordered by ``(timestamp, item_id)`` within a user so ties are broken the same way
    every time. Users with fewer than ``min_train + 1 (+1 with valid)`` events stay whole in train.
    """
    _check(df, "interactions passed to leave_one_out", (U, I, T))
    held = 2 if valid else 1
    ranked = df.sort(U, T, I).with_columns(
        (pl.len().over(U) - pl.int_range(pl.len()).over(U)).alias("__from_end"),
        (pl.len().over(U) >= min_train + held).alias("__eligible"),
    )
    test_mask = pl.col("__eligible") & (pl.col("__from_end") == 1)
    valid_mask = pl.col("__eligible") & (pl.col("__from_end") == 2) & pl.lit(valid)
    drop = ["__from_end", "__eligible"]
    tst = ranked.filter(test_mask).drop(drop)
    if tst.is_empty():
        raise EmptySplitError(f"leave_one_out: no user has more than {min_train + held - 1} events")
    return Split(ranked.filter(~test_mask & ~valid_mask).drop(drop), ranked.filter(valid_mask).drop(drop), tst,
                 {"method": "leave_one_out", "valid": valid, "min_train": min_train})


class IdEncoder:
    """Dense encoding of external ids as ``0..n−1`` (in sorted order of the ids) and back.

    >>> enc = IdEncoder.fit(pl.Series([30, 10, 20, 10]))
    >>> enc.transform(pl.Series([10, 30])).to_list(), enc.inverse(np.array([2, 0])).to_list()
    ([0, 2], [30, 10])
    """

    def __init__(self, ids: pl.Series):
        self.ids = ids.alias("id")

    @classmethod
    def fit(cls, ids: pl.Series | list[Any] | np.ndarray) -> IdEncoder:
        s = ids if isinstance(ids, pl.Series) else pl.Series(ids)
        if s.null_count():
            raise SchemaError("ids to encode contain nulls")
        return cls(s.unique().sort())

    def __len__(self) -> int:
        return self.ids.len()

    def __contains__(self, value: Any) -> bool:
        return bool(self.ids.is_in(pl.Series([value], dtype=self.ids.dtype).implode()).any())

    def contains(self, ids: pl.Series) -> pl.Series:
        """Boolean mask: which ``ids`` are known."""
        return ids.is_in(self.ids.implode())

    def transform(self, ids: pl.Series, unknown: Literal["raise", "null"] = "raise") -> pl.Series:
        """External ids → dense codes (``Int64``). Unknown ids raise, or become null with ``unknown="null"``."""
        ids = ids if isinstance(ids, pl.Series) else pl.Series(ids)
        codes = ids.replace_strict(self.ids, pl.int_range(len(self), eager=True), default=None, return_dtype=pl.Int64)
        if unknown == "raise":
            missing = ids.filter(codes.is_null() & ids.is_not_null())
            if missing.len():
                raise UnknownUsersError(f"{missing.n_unique()} unknown id(s), e.g. {missing.unique().head(5).to_list()}; "
                                        "they were not in the data the encoder was fitted on")
        return codes

    def inverse(self, codes: np.ndarray | pl.Series) -> pl.Series:
        """Dense codes → external ids."""
        return self.ids.gather(codes)
