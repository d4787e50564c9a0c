"""User-facing errors shared by every layer.

Anything a user can cause (bad data, a missing file, a mismatched support set) is raised
as a `PolytaskError` with a message that says what went wrong and a hint that says how to
fix it. The CLI prints these without a traceback and exits with status 1 (2 for a
`UsageError`); with `--format json` it prints `to_dict()` as `{"error": {...}}`.
"""
from __future__ import annotations

import re
from typing import Optional

_WHERE = re.compile(r"^(?P<file>.*?):(?P<line>\d+)(?::(?P<column>\d+))?$")


class PolytaskError(Exception):
    """A problem the user can fix; never shown with a traceback.

    `where` is `file`, `file:line` or `file:line:column`; `code` names the kind of problem
    for programs (a PTxxx diagnostic code when there is one).
    """

    exit_code = 1
    code = "error"

    def __init__(self, message: str, hint: Optional[str] = None, where: Optional[str] = None,
                 code: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.where = where
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        return f"{text}\n  hint: {self.hint}" if self.hint else text

    def position(self) -> tuple[Optional[str], Optional[int], Optional[int]]:
        """(file, line, column) parsed from `where` (None for what is not known)."""
        if not self.where:
            return None, None, None
        match = _WHERE.match(self.where)
        if not match:
            return self.where, None, None
        column = match["column"]
        return match["file"], int(match["line"]), int(column) if column else None

    def to_dict(self) -> dict:
        """What `--format json` prints under "error"."""
        file, line, column = self.position()
        return {"code": self.code, "message": self.message, "hint": self.hint,
                "file": file, "line": line, "column": column}


class UsageError(PolytaskError):
    """Options that cannot be used together, or a path argument that is not there (exit 2)."""

    exit_code = 2
    code = "usage"


class DataError(PolytaskError):
    """Data that cannot be read or does not fit the spec (missing column, bad image, empty split)."""

    code = "data"


class RunError(PolytaskError):
    """A run that cannot start or continue (no checkpoint to resume, NaN loss, bad run directory)."""

    code = "run"


def special_file(path) -> Optional[str]:
    """Why `path` cannot be read as a file when it exists but is not a regular file (a FIFO,
    a device, a socket); None for regular files, folders and paths that do not exist.

    Opening a FIFO blocks until a writer appears, so every reader asks this first.
    """
    import os
    import stat

    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a character device" if stat.S_ISCHR(mode) else "a block device" if stat.S_ISBLK(mode)
            else "not a regular file")
    return f"{path} is {kind}, not a regular file"


class Interrupted(RunError):
    """Ctrl-C or SIGTERM stopped the command (in the training loop: after saving a checkpoint)."""

    exit_code = 130
