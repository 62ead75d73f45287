"""Errors with stable codes: the API returns ``code`` for machines and ``message`` for people."""

from __future__ import annotations


class CxmError(Exception):
    code = "error"
    status = 400

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status


class NotFound(CxmError):
    code = "not_found"
    status = 404


class InvalidInput(CxmError):
    code = "invalid"
    status = 400


class Conflict(CxmError):
    code = "conflict"
    status = 409
