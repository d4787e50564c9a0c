"""`mgda`: the multiple-gradient descent algorithm as multi-objective optimisation
(Sener & Koltun, NeurIPS 2018, "Multi-Task Learning as Multi-Objective Optimization").

The shared update is the minimum-norm point of the convex hull of the task gradients,

    min_a || sum_i a_i g_i ||^2   s.t.  a_i >= 0, sum_i a_i = 1,

a common descent direction (or 0 at a Pareto-stationary point). It is found with the
paper's Frank-Wolfe solver (Alg. 2) on the Gramian G = J J^T: start at a = 1/T; pick the
vertex t = argmin_r (G a)_r; move to the closest point of the segment [sum_i a_i g_i, g_t]
(exact line search, the two-vector case of Alg. 1) -- or, when it gains more, away from the
worst vertex in use (away steps, which make Frank-Wolfe converge linearly); stop after
`max_iterations` or when the step is below `tolerance` (the authors' 250 and 1e-5). `upper_bound: true` is MGDA-UB
(Sec. 3.3): the g_i are gradients of the shared representation h instead of the shared
parameters (one backward pass through the trunk). `normalization` divides each gradient by
its L2 norm, its loss, or both (the paper's gradient normalisation options, Sec. 3.3 /
App.); the update is then the min-norm point of the normalised gradients.
"""
from typing import Literal

from pydantic import Field

from polytask.compiler.weighting import Transform, run_compiled
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveFloat, PositiveInt, StrictModel


class MgdaParams(StrictModel):
    upper_bound: bool = Field(False, description='MGDA-UB: gradients w.r.t. the shared representation (Sener & Koltun 2018, Sec. 3.3).')
    normalization: Literal["none", "l2", "loss", "loss+"] = Field(
        "none", description='Divide each task gradient by its L2 norm (`l2`), its loss (`loss`), or both (`loss+`) before the min-norm solve.')
    max_iterations: PositiveInt = Field(250, description='Frank-Wolfe iterations at most.')
    tolerance: PositiveFloat = Field(1e-5, description='Stop when the Frank-Wolfe step changes the weights by less than this (L1).')


def min_norm_weights(gramian, max_iterations: int = 250, tolerance: float = 1e-5):
    """Frank-Wolfe with away steps: a on the simplex minimising a^T G a, from G [T, T].

    The paper's Alg. 2 moves towards the best vertex t = argmin (G a) with exact line
    search. Plain Frank-Wolfe zig-zags near a face of the simplex (1% off after 2000
    iterations with 5 tasks); the away step (move away from the worst vertex in use,
    s = argmax over a_s > 0 of (G a)_s, when that gains more; Lacoste-Julien & Jaggi 2015)
    makes it converge linearly. Both steps use the exact line search of the quadratic.
    """
    import tensorflow as tf

    count = tf.shape(gramian)[0]
    start = tf.fill([count], 1.0 / tf.cast(count, gramian.dtype))

    def body(i, a, change):
        ga = tf.linalg.matvec(gramian, a)
        value = tf.reduce_sum(a * ga)
        t = tf.argmin(ga, output_type=tf.int32)
        s = tf.argmax(tf.where(a > 0.0, ga, tf.fill(tf.shape(ga), -float("inf"))), output_type=tf.int32)
        # tf.gather, not ga[t]: XLA needs a slice's bounds at compile time, which would make the
        # Gramian's values compile-time constants (a recompilation, 0.17 s, per step).
        ga_t, ga_s, a_s = tf.gather(ga, t), tf.gather(ga, s), tf.gather(a, s)
        toward = value - ga_t >= ga_s - value
        vertex = tf.one_hot(tf.where(toward, t, s), count, dtype=a.dtype)
        direction = tf.where(toward, vertex - a, a - vertex)
        limit = tf.where(toward, 1.0, a_s / tf.maximum(1.0 - a_s, 1e-12))
        curvature = tf.reduce_sum(direction * tf.linalg.matvec(gramian, direction))
        gamma = tf.clip_by_value(-tf.reduce_sum(ga * direction) / tf.maximum(curvature, 1e-30), 0.0, limit)
        new = tf.maximum(a + gamma * direction, 0.0)
        new = new / tf.reduce_sum(new)
        return i + 1, new, tf.reduce_sum(tf.abs(new - a))

    _, a, _ = tf.while_loop(lambda i, a, change: tf.logical_and(i < max_iterations, change >= tolerance),
                            body, (tf.constant(0), start, tf.constant(float("inf"), gramian.dtype)))
    return a


def gradient_normalizers(gramian, losses, kind: str):
    """n_i with g_i / n_i the normalised task gradients."""
    import tensorflow as tf

    norms = tf.sqrt(tf.maximum(tf.linalg.diag_part(gramian), 0.0))
    if kind == "l2":
        scale = norms
    elif kind == "loss":
        scale = losses
    elif kind == "loss+":
        scale = losses * norms
    else:
        return tf.ones_like(norms)
    return tf.maximum(scale, 1e-12)


@WEIGHTINGS.register
class Mgda(Transform):
    """MGDA (Sener & Koltun 2018): the min-norm point of the task gradients' convex hull (MGDA-UB with `upper_bound`)."""

    name = "mgda"
    Params = MgdaParams
    needs_task_gradients = True
    needs = "gramian"
    representation_switch = "upper_bound"

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="mgda")
        module.params = self.params_of(context)
        return module

    def combine(self, state, gramian, inputs):
        import tensorflow as tf

        params = state.params
        n = gradient_normalizers(gramian, tf.stop_gradient(inputs.observed), params.normalization)
        a = run_compiled(min_norm_weights, gramian / (n[:, None] * n[None, :]), params.max_iterations, params.tolerance)
        return a / n
