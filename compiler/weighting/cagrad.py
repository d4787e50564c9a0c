"""`cagrad`: Conflict-Averse Gradient descent (Liu, Liu, Jin, Stone & Liu, NeurIPS 2021).

The update d maximises the worst task's improvement in a ball around the average gradient
g0 = (1/T) sum_i g_i:  max_d min_i g_i.d  s.t. ||d - g0|| <= c ||g0||. Its dual (eq. 4 /
Alg. 1) is a problem over the simplex,

    w* = argmin_w  g_w.g0 + sqrt(phi) ||g_w||,   g_w = sum_i w_i g_i,  phi = c^2 ||g0||^2,

and d = g0 + (sqrt(phi) / ||g_w*||) g_w*. Everything is a function of the Gramian, so the
update is sum_i a_i g_i with a = 1/T + lambda w*. The dual is solved in TensorFlow by
accelerated projected gradient descent on the simplex (step from a local Lipschitz
bound, Euclidean projection by sorting) on the trace-normalised Gramian (the minimiser is
scale invariant); the paper's code uses SciPy's SLSQP. `rescale` divides d by 1 + c^2
(1, the authors' default), 1 + c (2) or not at all (0). With c = 0 it is equal weighting
(mean); larger c moves towards MGDA.
"""
from typing import Literal

from pydantic import Field

from polytask.compiler.weighting import Transform, run_compiled
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import NonNegativeFloat, PositiveInt, StrictModel


class CaGradParams(StrictModel):
    c: NonNegativeFloat = Field(0.5, description='Radius of the ball around the average gradient, relative to its norm (Liu et al. 2021).')
    rescale: Literal[0, 1, 2] = Field(1, description='Divide the update by 1 (0), 1 + c^2 (1, the authors\' default) or 1 + c (2).')
    iterations: PositiveInt = Field(200, description='Projected-gradient iterations of the dual solve.')
    rep_grad: bool = Field(False, description='Use gradients w.r.t. the shared representation instead of the shared parameters.')


def project_simplex(v):
    """Euclidean projection of each row of v [..., T] onto the probability simplex (sort-based)."""
    import tensorflow as tf

    count = tf.shape(v)[-1]
    u = tf.sort(v, axis=-1, direction="DESCENDING")
    css = tf.cumsum(u, axis=-1) - 1.0
    index = tf.cast(tf.range(1, count + 1), v.dtype)
    rho = tf.reduce_sum(tf.cast(u - css / index > 0, tf.int32), axis=-1, keepdims=True)
    theta = tf.gather(css, rho - 1, batch_dims=len(v.shape) - 1) / tf.cast(rho, v.dtype)
    return tf.maximum(v - theta, 0.0)


def cagrad_dual(gramian, c: float, iterations: int):
    """w* on the simplex minimising w^T G b + c ||g0|| sqrt(w^T G w) (b = 1/T), and ||g0||."""
    import tensorflow as tf

    count = tf.shape(gramian)[0]
    b = tf.fill([count], 1.0 / tf.cast(count, gramian.dtype))
    scale = tf.maximum(tf.reduce_mean(tf.linalg.diag_part(gramian)), 1e-30)
    g = gramian / scale
    g0_norm = tf.sqrt(tf.maximum(tf.reduce_sum(b * tf.linalg.matvec(g, b)), 0.0) + 1e-8)
    radius = c * g0_norm
    linear = tf.linalg.matvec(g, b)
    top = tf.reduce_max(tf.linalg.eigvalsh(g))

    def grad(w):
        gw = tf.linalg.matvec(g, w)
        norm = tf.sqrt(tf.maximum(tf.reduce_sum(w * gw), 0.0) + 1e-8)
        return linear + radius * gw / norm, norm

    def body(i, w, y, t):
        gy, norm = grad(y)
        step = norm / (top * (norm + radius) + 1e-12)
        new = project_simplex(y - step * gy)
        t_next = 0.5 * (1.0 + tf.sqrt(1.0 + 4.0 * t * t))
        return i + 1, new, new + ((t - 1.0) / t_next) * (new - w), t_next

    _, w, _, _ = tf.while_loop(lambda i, *_: i < iterations, body, (tf.constant(0), b, b, tf.constant(1.0, gramian.dtype)))
    return w, g


@WEIGHTINGS.register
class CaGrad(Transform):
    """CAGrad (Liu et al. 2021): the update that most improves the worst task near the average gradient."""

    name = "cagrad"
    Params = CaGradParams
    needs_task_gradients = True
    needs = "gramian"

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="cagrad")
        module.params = self.params_of(context)
        return module

    def combine(self, state, gramian, inputs):
        import tensorflow as tf

        params = state.params
        count = tf.cast(tf.shape(gramian)[0], gramian.dtype)
        w, g = run_compiled(cagrad_dual, gramian, float(params.c), params.iterations)
        g0_norm = tf.sqrt(tf.maximum(tf.reduce_sum(g) / (count * count), 0.0) + 1e-8)
        gw_norm = tf.sqrt(tf.maximum(tf.reduce_sum(w * tf.linalg.matvec(g, w)), 0.0))
        lam = params.c * g0_norm / (gw_norm + 1e-8)
        a = 1.0 / count + lam * w
        divisor = {0: 1.0, 1: 1.0 + params.c ** 2, 2: 1.0 + params.c}[params.rescale]
        return a / divisor
