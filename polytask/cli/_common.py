"""Shared CLI plumbing, in one place for every verb: user errors as one clear message (or one
JSON object with `--format json`) and an exit code, never a traceback; the checks on path
arguments; and importing TensorFlow without its start-up log noise.

Exit codes: 0 done, 1 a problem with the input (spec, data, run), 2 a usage error (options
that conflict, a path argument that does not exist), 130 interrupted.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Optional

import click

from polytask.errors import PolytaskError, UsageError, special_file


def wants_json(args) -> bool:
    """True when the command line asks for `--format json` (looked at before click parses it,
    so a parse error is JSON too)."""
    args = list(args)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--format" and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if arg == "--format=json":
            return True
    return False


def error_document(exc: PolytaskError) -> dict:
    return {"error": exc.to_dict()}


def report_error(exc: PolytaskError, as_json: bool) -> "NoReturn":  # noqa: F821
    """Print a user error (JSON on stdout, or text on stderr) and exit with its code."""
    if as_json:
        click.echo(json.dumps(error_document(exc), indent=2, default=str))
    else:
        click.echo(f"error: {exc}", err=True)
    sys.exit(exc.exit_code)


class PolytaskGroup(click.Group):
    """The `polytask` group: every verb's user errors and click usage errors end here."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        raw = list(sys.argv[1:] if args is None else args)
        as_json = wants_json(raw)
        try:
            code = super().main(raw, prog_name, complete_var, standalone_mode=False, **extra)
        except PolytaskError as exc:
            report_error(exc, as_json)
        except click.ClickException as exc:
            if not as_json:
                if not standalone_mode:
                    raise
                exc.show()
                sys.exit(exc.exit_code)
            hint = None
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                hint = f"see `{ctx.command_path} --help`"
            report_error(UsageError(exc.format_message(), hint=hint), True)
        except click.exceptions.Abort:  # Ctrl-C or SIGTERM outside the training loop (polytask never prompts)
            if not standalone_mode:
                raise
            from polytask.errors import Interrupted

            report_error(Interrupted("interrupted (Ctrl-C or SIGTERM)",
                                     hint="a `train` stopped before its first step removes what it created; "
                                     "run the command again"), as_json)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)


def format_option(*choices: str, default: str = "text", help: Optional[str] = None):
    """`--format` with the verb's own choices (every verb has `json`)."""
    return click.option("--format", "output_format", type=click.Choice(list(choices)), default=default,
                        show_default=True, help=help or f"{' or '.join(choices)}; json prints one JSON object "
                        "on stdout, also on error ({\"error\": {code, message, hint, file, line, column}}).")


def input_file(path, what: str, *, usage: bool = True) -> Path:
    """A path argument that must be a readable regular file: a missing one is a usage error
    (exit 2, as in `polytask check`), a folder, FIFO, device or socket is refused at once."""
    path = Path(path)
    problem = special_file(path)
    if problem:
        raise PolytaskError(problem, hint=f"pass the {what} itself (polytask reads regular files only)")
    if not path.exists():
        error = UsageError if usage else PolytaskError
        raise error(f"no such {what}: {path}", hint=f"pass the path of the {what}")
    if path.is_dir():
        article = "an" if what[:1] in "aeiou" else "a"
        raise PolytaskError(f"{path} is a folder, not {article} {what}", hint=f"pass the {what} inside it")
    return path


def output_file(path) -> Path:
    """An output path that is not a FIFO, device or socket (writing to one would block or fail)."""
    path = Path(path)
    problem = special_file(path)
    if problem:
        raise PolytaskError(problem, hint="write to a regular file")
    return path


# TensorFlow's C++ start-up lines on a machine without a GPU: informational, though some are
# logged at ERROR level ("failed call to cuInit: ... UNKNOWN ERROR (303)").
_TF_NOISE = (
    "All log messages before absl::InitializeLog()",
    "oneDNN custom operations are on",
    "Could not find cuda drivers",
    "failed call to cuInit",
    "cpu_feature_guard.cc",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation placer already registered",
    "TF-TRT Warning",
    "Cannot dlopen some GPU libraries",
)


def use_onednn() -> None:
    """Turn on TensorFlow's oneDNN CPU kernels unless the user set TF_ENABLE_ONEDNN_OPTS (read
    when TensorFlow is imported). TensorFlow enables them by itself only on recent Intel CPUs;
    on AMD CPUs they run meta-learning conv models 1.8x faster (Omniglot MAML, 7.6 against 4.3
    meta-iterations/s, docs/benchmarks.md), since without them TensorFlow cannot differentiate
    the grouped convolution that runs all tasks at once."""
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def quiet_tensorflow() -> None:
    """Import TensorFlow and initialise its devices with stderr captured, then re-print only
    the lines that are not start-up noise. TF_CPP_MIN_LOG_LEVEL alone does not silence TF
    2.21's absl lines (they are written before absl logging is initialised).

    POLYTASK_TF_LOGS=1 shows everything TensorFlow prints.
    """
    use_onednn()
    if os.environ.get("POLYTASK_TF_LOGS") == "1":
        return
    import logging

    if _not_retracing not in logging.getLogger("tensorflow").filters:
        logging.getLogger("tensorflow").addFilter(_not_retracing)
    if "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tempfile

    try:
        saved = os.dup(2)
    except OSError:
        return
    with tempfile.TemporaryFile() as captured:
        sys.stderr.flush()
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf

            tf.config.list_physical_devices()
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        text = captured.read().decode("utf-8", "replace")
    kept = [line for line in text.splitlines() if line.strip() and not any(n in line for n in _TF_NOISE)]
    if kept:
        click.echo("\n".join(kept), err=True)


def _not_retracing(record) -> bool:
    """TensorFlow's "N out of the last M calls ... triggered tf.function retracing" warning: polytask
    builds a new program per seed, baseline arm and group, so it is expected and says nothing a user can act on."""
    return "triggered tf.function retracing" not in record.getMessage()
