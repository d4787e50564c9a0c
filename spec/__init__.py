"""polytask.spec: YAML text -> validated, typed Spec, with every problem as a positioned diagnostic.

    load_spec(path, check_data=True, allow_code=False) -> LoadedSpec    # raises SpecError
    check_file(path) -> CheckResult                                     # never raises for bad specs

Never imports TensorFlow. The names below are imported on first use: the spec models are
generated from the concept registries (`polytask.spec.registry`), whose descriptor
modules import `polytask.spec.registry` and `polytask.spec.types` themselves, so importing
this package must not build the models.
"""
import importlib

_EXPORTS = {
    "CheckResult": "checker", "check_file": "checker", "check_source": "checker",
    "Diagnostic": "diagnostics", "LoadedSpec": "loader", "SpecError": "loader", "load_spec": "loader",
    "Spec": "models",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"polytask.spec.{_EXPORTS[name]}"), name)
