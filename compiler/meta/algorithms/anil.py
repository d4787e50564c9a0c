"""ANIL (Raghu et al. 2020, "Almost No Inner Loop"): only the head adapts in the inner loop.

The body's features are computed once per task; the inner loop runs on the head alone
(second order through the head), and the outer loop trains body and head.
"""
from polytask.compiler.meta.algorithms.base import GradientBasedAlgorithm, register_algorithm


@register_algorithm("anil")
class ANIL(GradientBasedAlgorithm):
    second_order = True

    def adapted_names(self):
        return [p.name for p in self.model.architecture.head_params()]

    def body_stop(self):
        return self.model.architecture.head_start
