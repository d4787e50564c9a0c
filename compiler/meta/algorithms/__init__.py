"""Meta-learning algorithms, one module each, registered by their spec name.

    from polytask.compiler.meta.algorithms import get_algorithm
    algorithm = get_algorithm("maml")(model, structure, loss, description)

Adding an algorithm is adding one file with a `@register_algorithm("name")` class.
"""
from polytask.compiler.meta.algorithms.base import (
    GradientBasedAlgorithm,
    MetaAlgorithm,
    available_algorithms,
    get_algorithm,
    register_algorithm,
)

__all__ = ["GradientBasedAlgorithm", "MetaAlgorithm", "available_algorithms", "get_algorithm",
           "register_algorithm"]
