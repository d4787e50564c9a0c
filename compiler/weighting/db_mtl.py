"""`db_mtl`: Dual-Balancing Multi-Task Learning (Lin, Ye, Xu, Shi & Zhang, 2023, Alg. 1).

Two balancing steps. Loss scale: every task trains on log L_i, whose gradient g_i / L_i no
longer depends on the loss's scale (done here as weights 1 / L_i, held constant, so the
task-specific parameters train on sum_i log L_i too). Gradient magnitude: each task's
log-loss gradient of the shared parameters is tracked by an exponential moving average

    h_i <- beta_k h_i + (1 - beta_k) g_i,   beta_k = beta / k^sigma   (k = 1, 2, ...),

and the shared update is sum_i (max_j ||h_j|| / ||h_i||) h_i: every task's term is scaled to
the largest norm. The moving averages (one per task, the shared parameters' size) are
state; `beta` and `beta_sigma` default to the paper's 0.9 and 0.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import Fraction, NonNegativeFloat, StrictModel

EPSILON = 1e-8


class DbMtlParams(StrictModel):
    beta: Fraction = Field(0.9, description="Moving-average rate of the log-loss gradients (Lin et al. 2023).")
    beta_sigma: NonNegativeFloat = Field(0.0, description="Decay exponent: the rate at step k is beta / k^beta_sigma.")


@WEIGHTINGS.register
class DualBalancing(Transform):
    """DB-MTL (Lin et al. 2023): log-loss gradients, their moving averages scaled to the largest norm."""

    name = "db_mtl"
    Params = DbMtlParams
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        module = tf.Module(name="db_mtl_weighting")
        module.beta = float(params.beta)
        module.beta_sigma = float(params.beta_sigma)
        module.buffer = replica_variable(tf.zeros([context.num_tasks, int(context.shared_size)]), "gradient_average")
        module.updates = replica_variable(tf.constant(0.0), "updates")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        known = inputs.present & (inputs.observed > 0.0)  # a zero loss has nothing to balance (and no log)
        factors = tf.where(known, 1.0 / (weights * inputs.observed + EPSILON), tf.zeros_like(weights))
        return weights * tf.stop_gradient(factors), tf.constant(0.0)

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        k = state.updates.assign_add(1.0)
        rate = state.beta / tf.pow(k, state.beta_sigma)
        buffer = state.buffer.assign(task_gradients + rate * (state.buffer - task_gradients))
        norms = tf.norm(buffer, axis=1)
        scale = tf.reduce_max(norms) / (norms + EPSILON)
        return scale[:, None] * buffer
