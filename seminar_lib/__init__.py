"""Shared, unit-tested code of the recommender-systems course workbook.

Modules: :mod:`seminar_lib.datasets` (registry and loaders), :mod:`seminar_lib.splits`
(filters, splits, id encoding), :mod:`seminar_lib.metrics` (vectorised metrics and
:func:`~seminar_lib.metrics.evaluate`), :mod:`seminar_lib.models` (the recommender interface and
models), :mod:`seminar_lib.evaluation` (fit → recommend → metrics in one call).
"""

__version__ = "0.1.0"
