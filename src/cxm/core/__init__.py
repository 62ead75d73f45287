"""Shared kernel: base models, audit log, personal-data handling, clock, ids, errors."""
