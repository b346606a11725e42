"""The metric key: built in one place, parsed in one place, and the two are inverses."""

import polars as pl

from seminar_lib.metrics.keys import metric_key, metric_key_expr, split_key


def test_build_and_parse_are_inverses():
    for key in ("ndcg@10", "hit_rate@1", "ndcg_achievable@20", "auc"):
        assert metric_key(*split_key(key)) == key


def test_the_column_expression_builds_the_same_keys():
    table = pl.DataFrame({"metric": ["ndcg", "coverage"], "k": [10, 5]})
    assert table.select(metric_key_expr())["metric"].to_list() == [metric_key("ndcg", 10), metric_key("coverage", 5)]
