"""`graddrop`: Gradient Sign Dropout (Chen, Ngiam, Huang, Luong, Kretzschmar, Chai &
Anguelov, NeurIPS 2020, "Just Pick a Sign").

Works on the gradients of the shared representation h [B, d] (the paper's activation
layer). Per feature, the gradient sign purity over tasks is

    P = 1/2 (1 + sum_i S_i / sum_i |S_i|),   S_i = sum_b sign(h_b) * dL_i/dh_b   (eq. 1;
                                               batch-separated tasks are summed over the batch)

and with U ~ Uniform(0, 1) per feature, task i keeps its gradient where
M_i = [P > U][S_i > 0] + [P < U][S_i < 0], i.e. one sign survives per feature, positive
with probability P. `leak` l passes l of the dropped gradient anyway (eq. 3: the mask is
l + (1 - l) M_i). U is drawn statelessly from the seed and the step, so replicas agree and
resumed runs repeat it.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import Fraction, StrictModel


class GradDropParams(StrictModel):
    leak: Fraction = Field(0.0, description='Fraction of the dropped gradient passed anyway (0: pure GradDrop).')


@WEIGHTINGS.register
class GradDrop(Transform):
    """GradDrop (Chen et al. 2020): keep one gradient sign per representation feature, by its purity."""

    name = "graddrop"
    Params = GradDropParams
    needs_task_gradients = True
    representation_switch = None  # the method is defined on an activation layer only

    def gradient_space(self, params):
        return "representation"

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="graddrop")
        module.seed = int(context.seed)
        module.leak = float(self.params_of(context).leak)
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        h = inputs.representation
        count = tf.shape(task_gradients)[0]
        grads = tf.reshape(task_gradients, tf.concat([[count], tf.shape(h)], 0))  # [T, B, d]
        signed = tf.reduce_sum(grads * tf.sign(h)[None], axis=1)  # S_i [T, d]
        purity = 0.5 * (1.0 + tf.reduce_sum(signed, 0) / (tf.reduce_sum(tf.abs(signed), 0) + 1e-7))
        key = tf.stack([tf.constant(state.seed, tf.int64), tf.cast(inputs.step, tf.int64)])
        uniform = tf.random.stateless_uniform(tf.shape(purity), seed=key)
        keep = tf.cast(tf.logical_or(tf.logical_and(purity > uniform, signed > 0),
                                     tf.logical_and(purity < uniform, signed < 0)), grads.dtype)
        mask = state.leak + (1.0 - state.leak) * keep
        return tf.reshape(grads * mask[:, None, :], tf.shape(task_gradients))
