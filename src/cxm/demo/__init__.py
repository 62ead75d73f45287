"""Deterministic demo data for a fictional home & kitchen retailer."""
