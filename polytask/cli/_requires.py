"""Verbs that need TensorFlow say so in one line when the core install lacks it.

The core distribution (`pip install polytask`) carries what `check`, `schema`, `init` and
`plan` need; `train`, `evaluate` and `predict` need one of the TensorFlow extras.
"""
from __future__ import annotations

import functools
import importlib.util

from polytask.errors import PolytaskError

TENSORFLOW_EXTRAS = ("pip install 'polytask[tensorflow]' (or 'polytask[cpu]' for tensorflow-cpu, "
                     "'polytask[cuda]' for NVIDIA GPUs)")


def needs_tensorflow(verb: str):
    """Decorate a verb: a one-line error naming the extra when TF is absent.

    `find_spec` looks for the package without importing it, so the check costs nothing.
    """

    def decorate(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if importlib.util.find_spec("tensorflow") is None:
                raise PolytaskError(f"`polytask {verb}` needs TensorFlow, which is not installed: {TENSORFLOW_EXTRAS}")
            return func(*args, **kwargs)

        return wrapper

    return decorate
