"""`rlw`: Random Loss Weighting (Lin, Ye, Xu, Shi & Zhang, TMLR 2022, "Reasonable
Effectiveness of Random Weighting: A Litmus Test for Multi-Task Learning", eq. 3).

At every step, draw lambda ~ p(lambda) (one number per task) and train on

    L = sum_i softmax(lambda)_i * w_i L_i

with the normalised weights held constant (no gradient). p is the standard normal by
default (the paper's main choice) or uniform on [0, 1]. The weights sum to 1, as in the
paper and LibMTL, so the loss is 1/T of `equal`'s scale. The draw is stateless from the
seed and the step: every replica draws the same weights and a resumed run repeats them.
"""
from typing import Literal

from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import StrictModel


class RlwParams(StrictModel):
    distribution: Literal["normal", "uniform"] = Field("normal", description='p(lambda): standard normal, or uniform on [0, 1]; the weights are softmax(lambda).')


@WEIGHTINGS.register
class RandomLossWeighting(Transform):
    """Random Loss Weighting (Lin et al. 2022): softmax of random numbers, drawn anew each step."""

    name = "rlw"
    Params = RlwParams

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="rlw_weighting")
        module.seed = int(context.seed)
        module.distribution = self.params_of(context).distribution
        return module

    @staticmethod
    def draw(count: int, seed: int, step, distribution: str):
        """softmax(lambda) for one step: [count], the same on every replica."""
        import tensorflow as tf

        key = tf.stack([tf.constant(seed, tf.int64), tf.cast(step, tf.int64)])
        if distribution == "uniform":
            sample = tf.random.stateless_uniform([count], seed=key)
        else:
            sample = tf.random.stateless_normal([count], seed=key)
        return tf.nn.softmax(sample)

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        factor = self.draw(weights.shape[0], state.seed, inputs.step, state.distribution)
        return weights * tf.stop_gradient(factor), tf.constant(0.0)
