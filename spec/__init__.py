"""polytask.spec: YAML text -> validated, typed Spec, with every problem as a positioned diagnostic.

    load_spec(path, check_data=True, allow_code=False) -> LoadedSpec    # raises SpecError
    check_file(path) -> CheckResult                                     # never raises for bad specs

Never imports TensorFlow.
"""
from polytask.spec.checker import CheckResult, check_file, check_source
from polytask.spec.diagnostics import Diagnostic
from polytask.spec.loader import LoadedSpec, SpecError, load_spec
from polytask.spec.models import Spec

__all__ = ["CheckResult", "Diagnostic", "LoadedSpec", "Spec", "SpecError", "check_file", "check_source", "load_spec"]
