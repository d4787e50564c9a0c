"""First-order MAML (Finn et al. 2017, sec. 5.2): MAML with the inner gradients treated as
constants, so the meta-gradient is the query gradient at the adapted parameters."""
from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm


class FOMAML(GradientBasedAlgorithm):
    second_order = False
    maml_plus_plus = GradientBasedAlgorithm.maml_plus_plus - {"first_order_iterations"}  # always first order


@ALGORITHMS.register
class FOMAMLAlgorithm(Algorithm):
    """First-order MAML (Finn et al. 2017): the inner gradients are treated as constants."""

    name = "fomaml"
    implementation = FOMAML
