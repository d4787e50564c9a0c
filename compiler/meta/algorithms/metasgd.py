"""Meta-SGD (Li et al. 2017): MAML whose inner learning rate is meta-learned per parameter.

Every parameter has a same-shaped learning-rate tensor alpha, initialised to
`inner.learning_rate`; the inner update is theta' = theta - alpha * grad and the outer
loop trains theta and alpha together (second order).
"""

from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm

PREFIX = "inner_lr/"


class MetaSGD(GradientBasedAlgorithm):
    learned_learning_rates = True
    second_order = True

    def extra_variables(self):
        import tensorflow as tf

        return {PREFIX + p.name: tf.fill(p.shape, float(self.inner_lr)) for p in self.model.architecture.params}

    # It learns its own rates; per-parameter rates for weights the inner loop never adapts
    # (per-step batch norm) would be dead parameters.
    maml_plus_plus = GradientBasedAlgorithm.maml_plus_plus - {"learn_step_sizes", "per_step_batch_norm"}

    def step_sizes(self, extra, step):
        return {name: extra[PREFIX + name][None] for name in self.adapted_names()}


@ALGORITHMS.register
class MetaSGDAlgorithm(Algorithm):
    """Meta-SGD (Li et al. 2017): MAML with a meta-learned learning rate per parameter."""

    name = "metasgd"
    implementation = MetaSGD
