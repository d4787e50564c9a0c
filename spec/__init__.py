"""polytask.spec: YAML text -> validated, typed Spec. Never imports TensorFlow."""
from polytask.spec.loader import LoadedSpec, SpecError, load_spec
from polytask.spec.models import Spec

__all__ = ["LoadedSpec", "Spec", "SpecError", "load_spec"]
