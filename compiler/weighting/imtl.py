"""`imtl`: Impartial Multi-Task Learning (Liu, Li, Kuang, Xue, Chen, Yang, Liao & Zhang, ICLR 2021).

IMTL-G (gradient balance, Sec. 3.2): the update g = sum_i a_i g_i, sum_i a_i = 1, has equal
projections onto every task's unit gradient u_i = g_i / ||g_i||: g.(u_1 - u_i) = 0. With
D = [g_1 - g_i]_{i>=2} and U = [u_1 - u_i]_{i>=2}, the closed form (eq. 6) is
a_{2:T} = g_1 U^T (D U^T)^{-1}, a_1 = 1 - sum a_{2:T}; all of it is a function of the
Gramian. IMTL-L (loss balance, Sec. 3.1): learned scales s_i train the losses e^{s_i} L_i -
s_i, which drives every scaled loss e^{s_i} L_i to 1 (s_i = -log L_i). `mode: hybrid` (the
paper's IMTL) applies IMTL-G to the gradients of the IMTL-L-scaled losses; `loss` needs
no per-task gradients at all.
"""
from typing import Literal

from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import StrictModel


class ImtlParams(StrictModel):
    mode: Literal["hybrid", "gradient", "loss"] = Field(
        "hybrid", description='IMTL-G (`gradient`), IMTL-L (`loss`) or both (`hybrid`, the paper\'s IMTL).')
    rep_grad: bool = Field(False, description='Use gradients w.r.t. the shared representation instead of the shared parameters (the paper\'s choice; with mixed-task batches those are orthogonal across tasks).')


def imtl_g_weights(gramian):
    """IMTL-G's a [T] (sum 1) from the Gramian, eq. 6."""
    import tensorflow as tf

    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 1e-30))
    m = gramian / norms[None, :]  # m_ij = g_i . u_j
    gu = m[0, 0] - m[0, 1:]  # (g_1 U^T)_k
    du = m[0, 0] - m[0:1, 1:] - m[1:, 0:1] + m[1:, 1:]  # (D U^T)_kl
    rest = tf.linalg.solve(tf.transpose(du), gu[:, None])[:, 0]  # a^T (D U^T) = g_1 U^T
    return tf.concat([1.0 - tf.reduce_sum(rest, keepdims=True), rest], axis=0)


@WEIGHTINGS.register
class Imtl(Transform):
    """IMTL (Liu et al. 2021): impartial gradient (IMTL-G) and loss (IMTL-L) balancing, or both."""

    name = "imtl"
    Params = ImtlParams
    needs_task_gradients = True
    needs = "gramian"

    def uses_task_gradients(self, params):
        return params.mode != "loss"

    def plan_params(self, num_tasks):
        return num_tasks, "one learned loss scale per task (IMTL-L; not used by mode: gradient)"

    def init(self, context):
        import keras

        params = self.params_of(context)

        class LossScales(keras.layers.Layer):
            def __init__(self, count):
                super().__init__(name="imtl_weighting")
                self.mode = params.mode
                if params.mode != "gradient":
                    self.scale = self.add_weight(shape=(count,), initializer="zeros", name="loss_scale")

        return LossScales(context.num_tasks)

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        if state.mode == "gradient":
            return weights, tf.constant(0.0)
        s = tf.convert_to_tensor(state.scale)
        present = tf.cast(inputs.present, tf.float32)
        # -s_i is added once globally, so each replica adds its share.
        return weights * tf.exp(s), -tf.reduce_sum(s * present) / float(inputs.replicas)

    def combine(self, state, gramian, inputs):
        return imtl_g_weights(gramian)

    def transform_gradients(self, state, task_gradients, inputs):
        if state.mode == "loss":
            return task_gradients
        return super().transform_gradients(state, task_gradients, inputs)
