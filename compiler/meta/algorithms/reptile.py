"""Reptile (Nichol et al. 2018): move the initialisation towards each task's adapted weights.

Each task runs `inner.steps` plain SGD steps on its support set (no second-order terms);
the meta-update direction is theta - mean_t(theta'_t), scaled by `reptile_step_size`
(epsilon) and handed to the configured outer optimizer as a gradient. With
`optimizer: {sgd: {learning_rate: 1}}` this is exactly Reptile's theta += epsilon *
(mean theta' - theta); with Adam it is the common "Reptile with an adaptive outer step".
"""

from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.algorithms.base import Algorithm, GradientBasedAlgorithm


class Reptile(GradientBasedAlgorithm):
    outer_step_size = True
    second_order = False
    maml_plus_plus = frozenset()  # no query-loss meta-gradient for the MAML++ options to act on

    def meta_gradients(self, theta, extra, batch, *, ways=None, iteration=None, first_order=None):
        import tensorflow as tf

        fast, sx, qx, start, _ = self.adapt(theta, extra, batch["support_x"], batch["support_y"],
                                            batch["query_x"], self.inner_steps, ways=ways, first_order=True)
        metrics = self.loss.metrics(self._query(fast, sx, qx, start), batch["query_y"], ways)
        epsilon = self.structure.reptile_step_size
        grads = {name: epsilon * tf.reduce_sum(value[None] - tf.stop_gradient(fast[name]), axis=0)
                 for name, value in theta.items()}
        return grads, {}, {k: tf.stop_gradient(v) for k, v in metrics.items()}


@ALGORITHMS.register
class ReptileAlgorithm(Algorithm):
    """Reptile (Nichol et al. 2018): move the initialisation towards each task's adapted weights."""

    name = "reptile"
    implementation = Reptile
