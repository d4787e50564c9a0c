"""MAML (Finn et al. 2017): meta-learn an initialisation that adapts in a few gradient steps.

The meta-gradient differentiates through the inner gradient steps (second order: it
includes the Hessian-vector products of the support loss).
"""
from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm


class MAML(GradientBasedAlgorithm):
    second_order = True


@ALGORITHMS.register
class MAMLAlgorithm(Algorithm):
    """MAML (Finn et al. 2017): an initialisation that adapts in a few gradient steps (second order)."""

    name = "maml"
    implementation = MAML
