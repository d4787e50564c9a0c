"""`uncertainty`: homoscedastic uncertainty weighting (Kendall, Gal & Cipolla, CVPR 2018).

Each task learns s_i = log sigma_i^2 and the loss becomes
    sum_i  0.5 * exp(-s_i) * w_i L_i + 0.5 * s_i,
the form of eq. (7)/(10) used by most implementations (e.g. LibMTL). Minimising over s_i
gives s_i = log(w_i L_i): noisy (high-loss) tasks are down-weighted. The s_i are trained by
the main optimizer together with the model.
"""
from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS


@WEIGHTINGS.register
class Uncertainty(Transform):
    """Homoscedastic uncertainty weighting (Kendall et al. 2018): a learned log-variance per task."""

    name = "uncertainty"

    def plan_params(self, num_tasks):
        return num_tasks, "one learned log-variance per task (Kendall et al. 2018)"

    def init(self, context):
        import keras

        class LogVariances(keras.layers.Layer):
            def __init__(self, count):
                super().__init__(name="uncertainty_weighting")
                self.log_variance = self.add_weight(shape=(count,), initializer="zeros", name="log_variance")

        return LogVariances(context.num_tasks)

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        s = tf.convert_to_tensor(state.log_variance)
        present = tf.cast(inputs.present, tf.float32)
        # The 0.5*s_i term is added once globally, so each replica adds its share.
        extra = tf.reduce_sum(0.5 * s * present) / float(inputs.replicas)
        return weights * 0.5 * tf.exp(-s), extra
