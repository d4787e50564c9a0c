"""`gls`: Geometric Loss Strategy (Chennupati, Sistu, Yogamani & Rawashdeh, CVPRW 2019, eq. 3).

The tasks' losses are combined by their geometric mean,

    L = (prod_i L_i)^(1/T),

which is invariant to each task's loss scale. Its gradient is sum_i (L / (T L_i)) grad L_i,
so GLS is a reweighting with w_i = L / (T L_i), computed from the global per-task losses and
held constant; `sum_i w_i L_i` then equals L itself. The product runs over the tasks present
in the batch with a positive loss (an absent task's loss is not known; a zero loss has no
log). It applies to the weighted losses w_i L_i of the transforms before it (declared task
weights by default; a constant factor on a task only scales L).
"""
from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS

EPSILON = 1e-12


def geometric_factors(losses, present):
    """dL/dl_i for L = (prod_{present} l_i)^(1/n): L / (n l_i) on present tasks, 0 elsewhere."""
    import tensorflow as tf

    mask = tf.cast(present & (losses > 0.0), tf.float32)  # a zero loss has no log
    count = tf.maximum(tf.reduce_sum(mask), 1.0)
    logs = tf.math.log(tf.maximum(losses, EPSILON)) * mask
    geometric = tf.exp(tf.reduce_sum(logs) / count)
    return mask * geometric / (count * tf.maximum(losses, EPSILON))


@WEIGHTINGS.register
class GeometricLossStrategy(Transform):
    """Geometric Loss Strategy (Chennupati et al. 2019): minimise the geometric mean of the task losses."""

    name = "gls"

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        factors = geometric_factors(weights * inputs.observed, inputs.present)
        return weights * tf.stop_gradient(factors), tf.constant(0.0)
