"""MAML (Finn et al. 2017): meta-learn an initialisation that adapts in a few gradient steps.

The meta-gradient differentiates through the inner gradient steps (second order: it
includes the Hessian-vector products of the support loss).
"""
from polytask.compiler.meta.algorithms.base import GradientBasedAlgorithm, register_algorithm


@register_algorithm("maml")
class MAML(GradientBasedAlgorithm):
    second_order = True
