"""`gradnorm`: GradNorm (Chen, Badrinarayanan, Lee & Rabinovich, ICML 2018).

Learned task weights w_i balance the gradient norms G_i = ||grad_W w_i L_i|| at the last
shared weight W: with L~_i = L_i(t) / L_i(0), r_i = L~_i / mean(L~) and
target_i = mean(G) * r_i^alpha (held constant), the weights descend
L_grad = sum_i |G_i - target_i| (eq. 2), then are renormalised to sum to T. Tasks that train
slowly (high r_i) get larger gradients. Since G_i = w_i ||grad_W L_i||, only the per-task
gradient norms are needed (no second-order terms). The weights are updated with Adam at
`learning_rate` (the paper trains them with the model's optimizer).
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import NonNegativeFloat, PositiveFloat, StrictModel

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


class GradNormParams(StrictModel):
    alpha: NonNegativeFloat = Field(1.5, description='Restoring-force strength (Chen et al. 2018).')
    learning_rate: PositiveFloat = Field(0.025, description='Step size of the task weights.')


@WEIGHTINGS.register
class GradNorm(Transform):
    """GradNorm (Chen et al. 2018): learned weights that balance per-task gradient norms."""

    name = "gradnorm"
    Params = GradNormParams
    needs_gradient_norms = True

    def init(self, context):
        import tensorflow as tf

        count = context.num_tasks
        module = tf.Module(name="gradnorm_weighting")
        params = self.params_of(context)
        module.alpha = float(params.alpha)
        module.learning_rate = float(params.learning_rate)
        module.task_weights = replica_variable(tf.ones([count]), "task_weights")
        module.initial_losses = replica_variable(tf.zeros([count]), "initial_losses")
        module.first_moment = replica_variable(tf.zeros([count]), "first_moment")
        module.second_moment = replica_variable(tf.zeros([count]), "second_moment")
        module.updates = replica_variable(tf.constant(0.0), "updates")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        return weights * tf.stop_gradient(tf.convert_to_tensor(state.task_weights)), tf.constant(0.0)

    def update(self, state, inputs, weights):
        import tensorflow as tf

        present = inputs.present
        observed = inputs.observed
        initial = state.initial_losses.assign(
            tf.where(present & (state.initial_losses <= 0.0), observed, state.initial_losses))
        active = present & (initial > 0.0)
        active_f = tf.cast(active, tf.float32)
        count = tf.maximum(tf.reduce_sum(active_f), 1.0)
        relative = tf.where(active, observed / tf.maximum(initial, 1e-12), tf.zeros_like(observed))
        ratios = tf.where(active, relative / tf.maximum(tf.reduce_sum(relative) / count, 1e-12), tf.ones_like(relative))
        # Only tasks in this batch take part: their weights, norms and mean G.
        w = tf.convert_to_tensor(state.task_weights)
        norms = inputs.grad_norms * active_f
        gradient_norms = w * norms
        mean_g = tf.reduce_sum(gradient_norms) / count
        target = mean_g * tf.pow(ratios, state.alpha)
        grad = tf.sign(gradient_norms - target) * norms * active_f
        t = state.updates.assign_add(1.0)
        m = state.first_moment.assign(BETA_1 * state.first_moment + (1 - BETA_1) * grad)
        v = state.second_moment.assign(BETA_2 * state.second_moment + (1 - BETA_2) * grad * grad)
        m_hat = m / (1 - tf.pow(BETA_1, t))
        v_hat = v / (1 - tf.pow(BETA_2, t))
        step = state.learning_rate * m_hat / (tf.sqrt(v_hat) + EPSILON)
        new = tf.maximum(w - step * active_f, 1e-3)
        total = tf.cast(tf.size(new), tf.float32)
        state.task_weights.assign(new * total / tf.reduce_sum(new))
