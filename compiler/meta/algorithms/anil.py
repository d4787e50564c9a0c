"""ANIL (Raghu et al. 2020, "Almost No Inner Loop"): only the head adapts in the inner loop.

The body's features are computed once per task; the inner loop runs on the head alone
(second order through the head), and the outer loop trains body and head.
"""
from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm


class ANIL(GradientBasedAlgorithm):
    adapts = "head only"
    second_order = True
    # The body's features are computed once per task, so there is no per-step pass through it.
    maml_plus_plus = GradientBasedAlgorithm.maml_plus_plus - {"per_step_batch_norm"}

    def adapted_names(self):
        return [p.name for p in self.model.architecture.head_params()]

    def body_stop(self):
        return self.model.architecture.head_start


@ALGORITHMS.register
class ANILAlgorithm(Algorithm):
    """ANIL (Raghu et al. 2020): only the head adapts in the inner loop."""

    name = "anil"
    implementation = ANIL
