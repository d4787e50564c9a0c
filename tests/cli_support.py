"""Helpers for CLI tests: run a verb in-process and insist it ended cleanly."""
from __future__ import annotations

from click.testing import CliRunner

from polytask.cli import main


def invoke(*args):
    """Run `polytask ARGS...`; fail the test on an uncaught exception or a printed traceback."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    # An uncaught exception would also give exit code 1; only a clean sys.exit counts here.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result
