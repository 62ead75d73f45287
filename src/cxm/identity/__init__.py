"""Identity graph and profiles: deterministic merging, reversible merges, traits, consent.

Public surface: :mod:`cxm.identity.actions` (writes), :mod:`cxm.identity.queries` (reads).
"""
