"""`module:attr` references (`source: python`): importing them is running user code.

Nothing in polytask imports such a reference unless the caller opted in (`allow_code=True`,
`--allow-code` on the command line). `polytask check` without the opt-in reports PT401 (not
verified) and never imports; with it, it imports the module and checks the attribute is a
callable, but does not call it.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from pathlib import Path
from typing import Any, Optional

from polytask.errors import PolytaskError


class CodeNotAllowed(PolytaskError):
    """A spec refers to Python code and the caller did not opt in."""


def import_callable(reference: str, base_dir: Optional[Path], allow_code: bool) -> Any:
    """Import `module:attr` (the spec's folder first on sys.path) and return the attribute.

    Raises CodeNotAllowed without the opt-in, PolytaskError if it cannot be imported.
    """
    if not allow_code:
        raise CodeNotAllowed(
            f"the spec refers to Python code ({reference}) and code execution was not allowed",
            hint="pass --allow-code (allow_code=True) if you trust this spec",
        )
    module_name, _, attr = reference.partition(":")
    added = base_dir is not None and str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        # Whatever the module prints goes to stderr, so `check --format json` stays parseable.
        with contextlib.redirect_stdout(sys.stderr):
            module = importlib.import_module(module_name)
    except BaseException as exc:  # user code may raise anything, even SystemExit
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise PolytaskError(
            f"cannot import module '{module_name}': {type(exc).__name__}: {exc}",
            hint="the module is looked up next to the spec file, then on the Python path",
        ) from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    if not hasattr(module, attr):
        raise PolytaskError(f"module '{module_name}' has no attribute '{attr}'")
    value = getattr(module, attr)
    if not callable(value):
        raise PolytaskError(f"'{reference}' is not callable (it is a {type(value).__name__})")
    return value
