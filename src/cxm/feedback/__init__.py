"""Feedback: surveys (NPS, CSAT, CES, custom), their delivery, the contact policy, responses
and the themes found in open-text answers. See README.md."""
