"""The `polytask` command: a thin click layer over spec, compiler and runtime.

Each verb lives in its own module and registers itself on `main`. Heavy imports
(TensorFlow) happen inside the verbs that need them, never at module import time.
"""
import click

from polytask import __version__
from polytask.cli._common import PolytaskGroup


@click.group(cls=PolytaskGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="polytask")
def main() -> None:
    """Declarative multi-task and meta-learning on TensorFlow."""


def _register() -> None:
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_register()
