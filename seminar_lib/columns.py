"""Column names shared by every table in the course."""

from __future__ import annotations


class Columns:
    """Names of the common columns.

    Interactions tables have ``user_id, item_id, timestamp, weight`` (plus dataset-specific
    columns); recommendation tables have ``user_id, item_id, score, rank``.
    """

    user = "user_id"
    item = "item_id"
    timestamp = "timestamp"
    weight = "weight"
    score = "score"
    rank = "rank"

    interactions = (user, item, timestamp, weight)
