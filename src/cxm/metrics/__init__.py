"""Metrics: the KPI library (NPS, CSAT, CES, response rate), slicing and trends, driver analysis.

Pure modules only — no models, no I/O, no database — so that every formula is unit-tested
without fixtures and the same code serves the API, the CLI, the web dashboards and the worker:

- :mod:`cxm.metrics.kpi` — one answer set in, one :class:`~cxm.metrics.kpi.KpiResult` out
  (value, counts, 95 % confidence interval).
- :mod:`cxm.metrics.slicing` — the same KPI per channel / stage / segment / survey and per
  day / week / month.
- :mod:`cxm.metrics.drivers` — which themes and touchpoints move the score, with significance and
  a plain-English sentence per driver.

See ``README.md`` beside this file for invariants and formulas, ``docs/metrics.md`` for users.
"""
