r"""Next-item evaluation: every event of a period is a target given all the user's earlier events.

Notebook 05 (§ evaluation) teaches this protocol; the trainer uses it for validation.

The SASRec seminar's protocol: after a global time split, each event in the evaluated period is a
*sample* — the target is its item, the input is the user's whole history before it (train events,
and the period's earlier events). That evaluates thousands of events where a "recommend once per
user" protocol has a hundred users. Two things the original seminar got wrong are fixed here:

* **users, not events, are the unit.** The original seminar averaged over samples, so a user with 400 events in
  the period weighed 400 times more than a user with one (on ml-100k: 9,813 validation samples
  from 198 users). Here each sample's metric is averaged within its user first, then over users
  (``average="user"``; ``"event"`` gives the original seminar's weighting, for comparison). Confidence
  intervals resample users. ``per_user`` draws at most that many samples per user (seeded) — a
  random sample is an unbiased estimate of the user's average, so ``per_user=1`` is a cheap
  "one sample per user" validation and ``per_user=None`` uses every event;
* **filter-viewed**: items already in the sample's history are not recommended (on MovieLens a
  user rates a movie once, so they are never the answer).

Samples need at least ``min_history`` earlier events (a first-ever event has nothing to predict from).
Each sample becomes a *pseudo-user* (a negative id) whose interactions are its history; the model
is asked through the ordinary ``recommend(..., interactions=history)``, so any model that scores
from a given history (``scores_from_history``, or one that ``supports_cold_users``) can be evaluated
the same way. Metric definitions are the library's (:mod:`seminar_lib.metrics`): with one relevant
item, HitRate@k is whether it is in the top k and nDCG@k is :math:`\frac{1}{\log_2(\mathrm{rank}+1)}`
divided by :math:`\mathrm{IDCG}@k = \sum_{i=1}^{k} 1/\log_2(i+1)` (RecTools' normalisation; the original seminar's
"DCG" column is :func:`~seminar_lib.metrics.dcg`, the same number without the division).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from seminar_lib.columns import Columns
from seminar_lib.errors import EmptySplitError, require_columns
from seminar_lib.metrics import bootstrap_means, coverage, per_user_metrics
from seminar_lib.metrics.keys import metric_key, split_key

if TYPE_CHECKING:  # the models import this module (validation), so only the type is imported
    from seminar_lib.models.base import Recommender

U, I, T = Columns.user, Columns.item, Columns.timestamp
OWNER = "owner"


@dataclass(frozen=True)
class NextItemSamples:
    """Samples of the next-item protocol.

    ``targets``: ``user_id`` (the sample's pseudo-user id: negative for integer ids), ``item_id`` (the target),
    ``owner`` (the real user) and ``timestamp``; ``history``: the pseudo-users' interactions
    (``user_id, item_id, timestamp``), every event of the owner before the target.
    """

    targets: pl.DataFrame
    history: pl.DataFrame

    @property
    def n_samples(self) -> int:
        return self.targets.height

    @property
    def n_users(self) -> int:
        return self.targets[OWNER].n_unique()


def next_item_samples(interactions: pl.DataFrame, start: datetime | None = None, end: datetime | None = None, *,
                      per_user: int | None = None, min_history: int = 1, seed: int = 0) -> NextItemSamples:
    """Targets: the events with ``start ≤ timestamp < end`` (None: unbounded) that have at least
    ``min_history`` earlier events of the same user in ``interactions``; each user's events are
    ordered by ``(timestamp, item_id)``. ``per_user``: keep at most this many targets per user,
    chosen uniformly at random with ``np.random.default_rng(seed)`` (None: all).

    ``interactions`` should hold everything up to ``end``: the histories come from it.

    >>> from datetime import datetime as dt
    >>> df = pl.DataFrame({"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 10],
    ...                    "timestamp": [dt(2020, 1, d) for d in (1, 2, 3, 3)]})
    >>> s = next_item_samples(df, start=dt(2020, 1, 2))
    >>> s.targets.select("user_id", "item_id", "owner").rows(), s.history.sort("user_id", "timestamp")["item_id"].to_list()
    ([(-1, 11, 1), (-2, 12, 1)], [10, 11, 10])
    """
    require_columns(interactions.columns, (U, I, T), "interactions passed to next_item_samples")
    if per_user is not None and per_user < 1:
        raise ValueError(f"per_user must be a positive number or None, got {per_user}")
    events = (interactions.select(U, I, T).sort(U, T, I)
              .with_columns(pl.int_range(pl.len()).over(U).alias("position")))
    period = pl.lit(True)
    if start is not None:
        period = period & (pl.col(T) >= start)
    if end is not None:
        period = period & (pl.col(T) < end)
    targets = events.filter(period & (pl.col("position") >= min_history))
    if per_user is not None:
        draws = np.random.default_rng(seed).random(targets.height)
        targets = (targets.with_columns(pl.Series("draw", draws))
                   .filter(pl.col("draw").rank("ordinal").over(U) <= per_user).drop("draw"))
    if targets.is_empty():
        raise EmptySplitError("next_item_samples: no event of the period has an earlier event of its user")
    # pseudo-user ids that no real user has: negative integers (after the largest id for unsigned
    # types), or "~sample<i>" strings
    counter = pl.int_range(1, targets.height + 1, eager=True)
    dtype = interactions[U].dtype
    if dtype.is_signed_integer():
        ids = (-counter).cast(dtype)
    elif dtype.is_integer():
        ids = (counter + interactions[U].max()).cast(dtype)
    else:
        ids = ("~sample" + counter.cast(pl.String)).cast(dtype)
    targets = targets.with_columns(ids.alias("sample"))
    history = (targets.select("sample", pl.col(U), pl.col("position").alias("before"))
               .join(events.select(U, I, T, "position"), on=U)
               .filter(pl.col("position") < pl.col("before"))
               .select(pl.col("sample").alias(U), I, T))
    return NextItemSamples(
        targets=targets.select(pl.col("sample").alias(U), I, pl.col(U).alias(OWNER), T),
        history=history,
    )


@dataclass(frozen=True)
class NextItemReport:
    """What :func:`evaluate_next_item` measured: ``metrics`` (tidy: ``metric, k, value`` [+ ``ci_low,
    ci_high``], ``n_users, n_samples``; with a ``name``, a ``model`` column first, as
    :func:`~seminar_lib.evaluation.fit_and_evaluate`'s reports have), ``per_sample`` (one row per sample and
    metric column) and the ``recos`` of the pseudo-users; ``model`` is the ``name`` (None without one)."""

    metrics: pl.DataFrame
    per_sample: pl.DataFrame
    recos: pl.DataFrame
    model: str | None = None

    def value(self, metric: str, k: int = 10) -> float:
        row = self.metrics.filter((pl.col("metric") == metric) & (pl.col("k") == k))
        if row.is_empty():
            raise KeyError(f"{metric_key(metric, k)} was not computed")
        return row["value"].item()


def evaluate_next_item(model: Recommender, samples: NextItemSamples, *, k: int | Iterable[int] = 10,
                       metrics: Sequence[str] = ("hit_rate", "ndcg"), with_coverage: bool = True,
                       filter_viewed: bool = True, average: Literal["user", "event"] = "user",
                       bootstrap: int = 0, seed: int = 0, batch_size: int = 1024,
                       name: str | None = None) -> NextItemReport:
    """Recommend top-``max(k)`` for every sample from its history and score the target.

    Args:
        model: a fitted model that scores from a given history (``scores_from_history``) or
            serves any user (``supports_cold_users``); samples it cannot score count as misses.
        samples: from :func:`next_item_samples`.
        k: cut-offs.
        metrics: accuracy metrics of :mod:`seminar_lib.metrics` (``hit_rate``, ``ndcg``, ``dcg``,
            ``mrr``, ``recall``, ``precision``, ``map``).
        with_coverage: add catalogue ``coverage@k`` over all samples' lists (catalogue: the
            model's items).
        filter_viewed: never recommend an item of the sample's history.
        average: ``"user"`` — mean over samples within each user, then over users; ``"event"`` —
            mean over samples (the original seminar's weighting).
        bootstrap: resamples of the users (or samples, with ``"event"``) for a 95 % interval.
        name: the model's label: adds a ``model`` column (first) to ``metrics``, so the tables of several
            reports concatenate into one long ``model, metric, k, value`` table for
            :func:`~seminar_lib.record.record_metrics` or :func:`~seminar_lib.evaluation.comparison_table`.
            None (the default): no ``model`` column.
    """
    if average not in ("user", "event"):
        raise ValueError("average must be 'user' or 'event'")
    ks = (k,) if isinstance(k, int) else tuple(sorted(set(k)))
    if not model.scores_from_history and not model.supports_cold_users:
        raise TypeError(f"{model.name} neither scores from a history nor serves unseen users; "
                        "it cannot be evaluated on next-item samples")
    recos = model.recommend(samples.targets[U], k=max(ks), filter_viewed=filter_viewed,
                            on_unsupported_targets="ignore", interactions=samples.history, batch_size=batch_size)
    tables = per_user_metrics(recos, samples.targets.select(U, I), k=ks, metrics=list(metrics))
    per_sample = samples.targets.select(U, OWNER)
    for table in tables.values():
        per_sample = per_sample.join(table, on=U, how="left")
    columns = [c for c in per_sample.columns if c not in (U, OWNER)]
    per_sample = per_sample.with_columns(pl.col(columns).fill_null(0.0))
    unit = per_sample.group_by(OWNER, maintain_order=True).agg(pl.col(columns).mean()) if average == "user" else per_sample
    values = unit.select(columns).to_numpy().astype(np.float64)
    means = values.mean(axis=0)
    rows = []
    interval = None
    if bootstrap:
        boot = bootstrap_means(values, bootstrap, np.random.default_rng(seed))
        interval = np.quantile(boot, [0.025, 0.975], axis=0)
    for j, column in enumerate(columns):
        metric, cut = split_key(column)
        row = {"metric": metric, "k": cut, "value": float(means[j])}
        if bootstrap:
            row |= {"ci_low": float(interval[0, j]), "ci_high": float(interval[1, j])}
        rows.append(row)
    if with_coverage:
        catalog = model.items_.ids
        for cut in ks:
            row = {"metric": "coverage", "k": cut, "value": coverage(recos, cut, catalog=catalog)}
            if bootstrap:
                row |= {"ci_low": None, "ci_high": None}
            rows.append(row)
    table = pl.DataFrame(rows).with_columns(pl.lit(samples.n_users).alias("n_users"),
                                            pl.lit(samples.n_samples).alias("n_samples"))
    order = {name: i for i, name in enumerate([*metrics, "coverage"])}
    table = table.sort(pl.col("metric").replace_strict(order, return_dtype=pl.Int64), "k")
    if name is not None:
        table = table.select(pl.lit(name).alias("model"), *table.columns)
    return NextItemReport(table, per_sample, recos, name)
