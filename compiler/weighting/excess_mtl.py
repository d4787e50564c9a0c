"""`excess_mtl`: ExcessMTL, robust multi-task learning with excess risks (He, Zhou, Zhao & Bhuiyan, ICML 2024, Alg. 1).

Tasks are weighted by their *excess* risk (loss above the task's attainable minimum) rather
than their loss, so a noisy task with a high but irreducible loss is not up-weighted. The
excess risk is estimated from a second-order expansion with a diagonal AdaGrad-style
curvature: with H_i = sqrt(sum over steps of g_i^2 + 1e-7) (elementwise),

    e_i = g_i^T diag(1 / H_i) g_i,

normalised by its value at the task's first step, and the weights take an exponentiated
(mirror-ascent) step λ_i <- λ_i exp(eta e_i), renormalised to sum to T. The weights computed
from this step's gradients scale this step's shared update; the task-specific parameters see
the previous step's weights (they are weighted before the gradients exist). The curvature
accumulators are state (one per task, the shared parameters' size).
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveFloat, StrictModel

CURVATURE_EPSILON = 1e-7


class ExcessMtlParams(StrictModel):
    robust_step_size: PositiveFloat = Field(0.01, description="Step size eta of the weights' exponentiated update (He et al. 2024).")


@WEIGHTINGS.register
class ExcessMtl(Transform):
    """ExcessMTL (He et al. 2024): weights that grow with each task's estimated excess risk."""

    name = "excess_mtl"
    Params = ExcessMtlParams
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        count = context.num_tasks
        module = tf.Module(name="excess_mtl_weighting")
        module.step_size = float(self.params_of(context).robust_step_size)
        module.task_weights = replica_variable(tf.ones([count]), "task_weights")
        module.squares = replica_variable(tf.zeros([count, int(context.shared_size)]), "squared_gradients")
        module.initial = replica_variable(tf.zeros([count]), "initial_excess")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        return weights * tf.stop_gradient(tf.convert_to_tensor(state.task_weights)), tf.constant(0.0)

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        old = tf.convert_to_tensor(state.task_weights)
        gradients = tf.math.divide_no_nan(task_gradients, old[:, None])  # before this transform's weights
        squares = state.squares.assign_add(gradients * gradients)
        excess = tf.reduce_sum(gradients * gradients / tf.sqrt(squares + CURVATURE_EPSILON), axis=1)
        first = (state.initial <= 0.0) & (excess > 0.0)
        initial = state.initial.assign(tf.where(first, excess, state.initial))
        waiting = first | (initial <= 0.0)  # a task's first step only records its normaliser
        ratio = tf.where(waiting, tf.zeros_like(excess), tf.minimum(excess / tf.maximum(initial, 1e-30), 1e30))
        # lambda exp(eta r) renormalised to sum T, in log space (a tiny first excess must not overflow)
        count = float(old.shape[0])
        new = count * tf.nn.softmax(tf.math.log(old) + state.step_size * ratio)
        new = tf.where(tf.reduce_all(waiting), old, new)
        state.task_weights.assign(new)
        return tf.math.divide_no_nan(new, old)[:, None] * task_gradients
