"""The error services raise when a request is valid but the change is not
allowed now (a resolved conversation cannot be assigned). The API turns it
into ``{"detail", "code"}`` with its status; console views show ``message``."""

from __future__ import annotations


class ServiceError(Exception):
    def __init__(self, message: str, *, code: str, status: int = 409) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status
