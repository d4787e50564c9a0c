"""`stch`: Smooth Tchebycheff scalarisation (Lin, Zhang, Yang, Zhang & Zhang, ICML 2024, eq. 8).

The Tchebycheff scalarisation max_i (l_i - z_i) is smoothed with a log-sum-exp of temperature mu,

    g_mu(l) = mu * log sum_i exp((l_i - z_i) / mu),

which approaches the max as mu -> 0 and is differentiable everywhere. For multi-task learning
the paper (and its official STCH_MTL code, followed by LibMTL) applies it to log-normalised
losses: l_i = log(L_i / n_i) with the ideal point z = 0, where the nadir vector n is the mean
loss over one period after `warmup_periods` periods of training on sum_i log L_i; the
objective is then T * g_mu. A period is `training.log_every` steps (the paper's periods are
epochs; multi-task runs have no common epoch). The gradient is a reweighting,
w_i = T softmax(l / mu)_i / L_i, computed from the global losses and held constant, so only
losses are needed. It is computed from the raw task losses (the nadir normalisation removes
any constant per-task scale) and multiplies the weights of the transforms before it.
"""
from typing import Annotated

from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveFloat, StrictModel

TINY = 1e-20


class StchParams(StrictModel):
    mu: PositiveFloat = Field(1.0, description="Smoothing temperature of the log-sum-exp (Lin et al. 2024; small: closer to the max).")
    warmup_periods: Annotated[int, Field(strict=True, ge=0, le=10**6)] = Field(
        4, description="Periods (training.log_every steps) of sum-of-log-losses training before the nadir "
                       "vector is averaged over one more period.")


def stch_factors(losses, present, nadir, mu: float, count: float):
    """d(T g_mu(log(l / n)))/dl_i: T softmax(log(l / n) / mu)_i / l_i on present tasks."""
    import tensorflow as tf

    normalised = tf.math.log(losses / nadir + TINY)
    scores = tf.where(present, normalised / mu, tf.fill(tf.shape(losses), float("-inf")))
    softmax = tf.nn.softmax(scores)
    return tf.where(present, count * softmax / (losses + TINY * nadir), tf.zeros_like(losses))


@WEIGHTINGS.register
class SmoothTchebycheff(Transform):
    """Smooth Tchebycheff scalarisation (Lin et al. 2024): a log-sum-exp of log-normalised losses."""

    name = "stch"
    Params = StchParams

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        module = tf.Module(name="stch_weighting")
        module.mu = float(params.mu)
        module.warmup_steps = int(params.warmup_periods) * int(context.period)
        module.period = int(context.period)
        module.total = replica_variable(tf.zeros([context.num_tasks]), "total")
        module.seen = replica_variable(tf.zeros([context.num_tasks]), "seen")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        losses = inputs.observed
        step = tf.cast(inputs.step, tf.int64)
        ready = step >= state.warmup_steps + state.period
        nadir = state.total / tf.maximum(state.seen, 1.0)
        usable = tf.logical_and(inputs.present & (losses > 0.0), state.seen > 0)
        count = float(weights.shape[0])
        stch = stch_factors(losses, usable, tf.where(state.seen > 0, nadir, tf.ones_like(nadir)), state.mu, count)
        known = inputs.present & (losses > 0.0)  # a zero loss has no log (and nothing to balance)
        log_sum = tf.where(known, 1.0 / (losses + TINY), tf.zeros_like(losses))  # d sum_i log l_i / dl_i
        factors = tf.where(ready, stch, log_sum)
        return weights * tf.stop_gradient(factors), tf.constant(0.0)

    def update(self, state, inputs, weights):
        import tensorflow as tf

        step = tf.cast(inputs.step, tf.int64)
        averaging = tf.logical_and(step >= state.warmup_steps, step < state.warmup_steps + state.period)
        take = tf.cast(tf.logical_and(averaging, inputs.present), tf.float32)
        state.total.assign_add(take * inputs.observed)
        state.seen.assign_add(take)
