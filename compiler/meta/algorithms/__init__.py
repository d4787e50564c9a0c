"""Meta-learning algorithms (`structure.algorithm`), one module each.

A module holds the implementation (a `MetaAlgorithm` subclass; TensorFlow is imported in
its methods) and its registered descriptor (an `Algorithm`), whose facts -- metric-based,
second order, what the inner loop adapts -- `polytask check` and `polytask plan` read:

    from polytask.spec.registry import ALGORITHMS
    algorithm = ALGORITHMS.get("maml").build(model, structure, loss, description)
"""
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm, MetaAlgorithm

__all__ = ["Algorithm", "GradientBasedAlgorithm", "MetaAlgorithm"]
