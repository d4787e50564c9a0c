"""User-facing errors shared by every layer.

Anything a user can cause (bad data, a missing file, a mismatched support set) is raised
as a `PolytaskError` with a message that says what went wrong and a hint that says how to
fix it. The CLI prints these without a traceback and exits with status 1.
"""
from __future__ import annotations

from typing import Optional


class PolytaskError(Exception):
    """A problem the user can fix; never shown with a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: Optional[str] = None, where: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text


class DataError(PolytaskError):
    """Data that cannot be read or does not fit the spec (missing column, bad image, empty split)."""


class RunError(PolytaskError):
    """A run that cannot start or continue (no checkpoint to resume, NaN loss, bad run directory)."""
