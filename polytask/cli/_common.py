"""Shared CLI plumbing: turning user errors into messages and exit codes, never tracebacks."""
from __future__ import annotations

import functools
import sys

import click

from polytask.errors import PolytaskError


def user_errors(func):
    """Print `PolytaskError`s (and Ctrl-C) as one clear message instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except PolytaskError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper
