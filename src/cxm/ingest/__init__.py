"""Ingest: the Segment-compatible tracking API, validation, idempotency and file import.

Public surface for later stages: :mod:`cxm.ingest.spec` (the normalised message),
:mod:`cxm.ingest.pipeline` (hooks later stages register), :mod:`cxm.ingest.queries`.
"""
