"""`dwa`: Dynamic Weight Average (Liu, Johns & Davison, CVPR 2019, eq. 2).

    w_i(t) = T * exp(r_i(t-1) / temp) / sum_k exp(r_k(t-1) / temp),   r_i(t-1) = L_i(t-1) / L_i(t-2)

where L_i(t) is task i's average loss over period t. The paper's periods are epochs; here a
period is `training.log_every` steps (multi-task runs mix tasks and have no common epoch).
Until two periods are complete the weights are 1. Tasks whose loss falls slowly get more weight.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveFloat, StrictModel


class DwaParams(StrictModel):
    temperature: PositiveFloat = Field(2.0, description='Softness of the dynamic weights (Liu et al. 2019).')


@WEIGHTINGS.register
class DynamicWeightAverage(Transform):
    """Dynamic Weight Average (Liu et al. 2019): weights from the ratio of recent losses."""

    name = "dwa"
    Params = DwaParams

    def init(self, context):
        import tensorflow as tf

        count = context.num_tasks
        module = tf.Module(name="dwa_weighting")
        module.temperature = float(self.params_of(context).temperature)
        module.period = int(context.period)
        module.previous = replica_variable(tf.zeros([count]), "previous")  # L(t-1)
        module.before = replica_variable(tf.zeros([count]), "before")  # L(t-2)
        module.total = replica_variable(tf.zeros([count]), "total")
        module.seen = replica_variable(tf.zeros([count]), "seen")
        module.periods = replica_variable(tf.constant(0, tf.int64), "periods")
        return module

    @staticmethod
    def dwa_weights(previous, before, temperature):
        import tensorflow as tf

        count = tf.cast(tf.shape(previous)[0], tf.float32)
        ratio = previous / tf.maximum(before, 1e-12)
        return count * tf.nn.softmax(ratio / temperature)

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        ready = state.periods >= 2
        dynamic = self.dwa_weights(state.previous, state.before, state.temperature)
        factor = tf.where(ready, dynamic, tf.ones_like(dynamic))
        return weights * tf.stop_gradient(factor), tf.constant(0.0)

    def update(self, state, inputs, weights):
        import tensorflow as tf

        present = tf.cast(inputs.present, tf.float32)
        total = state.total.assign_add(inputs.observed * present)
        seen = state.seen.assign_add(present)
        end = tf.equal((inputs.step + 1) % state.period, 0)
        mean = tf.where(seen > 0, total / tf.maximum(seen, 1.0), state.previous)
        state.before.assign(tf.where(end, state.previous, state.before))
        state.previous.assign(tf.where(end, mean, state.previous))
        state.total.assign(tf.where(end, tf.zeros_like(total), total))
        state.seen.assign(tf.where(end, tf.zeros_like(seen), seen))
        state.periods.assign_add(tf.cast(end, tf.int64))
