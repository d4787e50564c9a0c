"""First-order MAML (Finn et al. 2017, sec. 5.2): MAML with the inner gradients treated as
constants, so the meta-gradient is the query gradient at the adapted parameters."""
from polytask.compiler.meta.algorithms.base import GradientBasedAlgorithm, register_algorithm


@register_algorithm("fomaml")
class FOMAML(GradientBasedAlgorithm):
    second_order = False
