"""`fairgrad`: FairGrad, fair resource allocation in multi-task learning (Ban & Ji, ICML 2024, eq. 7).

The shared update d = sum_i w_i g_i is chosen so that the tasks' utilities g_i^T d are
alpha-fair: the weights solve the T x T system

    (G G^T) w = w^(-1/alpha),   w > 0.

alpha = 1 is proportional fairness (Nash-MTL's bargaining solution), alpha -> inf approaches
max-min fairness, alpha -> 0 the plain sum. The system is the stationarity condition of the
strictly convex  0.5 w^T A w - sum_i h(w_i)  (h' = w^(-1/alpha)), so its root is unique; it is
solved in TensorFlow inside the step by damped Newton iterations in float64 (the Hessian
A + diag(w^(-1/alpha - 1) / alpha) is positive definite) from the diagonal solution
w_i = A_ii^(-alpha/(1+alpha)), instead of the authors' SciPy least_squares. Tasks with a zero
gradient (absent from the batch) get weight 0.
"""
from typing import Annotated

from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveFloat, StrictModel

TINY = 1e-30


class FairGradParams(StrictModel):
    alpha: PositiveFloat = Field(1.0, description="Fairness level: 1 proportional fairness, large values near max-min (Ban & Ji 2024).")
    iterations: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        30, description="Newton iterations of the weight system (each one T x T solve).")


def fair_weights(gram, alpha: float, iterations: int, active):
    """The w > 0 solving gram w = w^(-1/alpha) on active tasks (0 on the others); gram [T, T] float64."""
    import tensorflow as tf

    count = tf.shape(gram)[0]
    mask = tf.cast(active, gram.dtype)
    eye = tf.eye(count, dtype=gram.dtype)
    # Inactive tasks: an identity row and column, whose solution (1) is then dropped.
    a = gram * mask[:, None] * mask[None, :] + eye * (1.0 - mask)[:, None]
    exponent = -1.0 / alpha
    w = tf.pow(tf.maximum(tf.linalg.diag_part(a), TINY), -alpha / (1.0 + alpha))
    for _ in range(iterations):
        residual = tf.linalg.matvec(a, w) - tf.pow(w, exponent)
        hessian = a + tf.linalg.diag(-exponent * tf.pow(w, exponent - 1.0))
        step = -tf.linalg.solve(hessian, residual[:, None])[:, 0]
        shrink = tf.where(step < 0, -w / tf.minimum(step, -TINY), tf.fill(tf.shape(w), tf.constant(2.0, gram.dtype)))
        size = tf.minimum(tf.constant(1.0, gram.dtype), 0.95 * tf.reduce_min(shrink))  # stay in w > 0
        w = w + size * step
    return w * mask


@WEIGHTINGS.register
class FairGrad(Transform):
    """FairGrad (Ban & Ji 2024): alpha-fair task weights from the gradients' Gram matrix."""

    name = "fairgrad"
    Params = FairGradParams
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        module = tf.Module(name="fairgrad")
        module.alpha = float(params.alpha)
        module.iterations = int(params.iterations)
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        gram = tf.cast(tf.linalg.matmul(task_gradients, task_gradients, transpose_b=True), tf.float64)
        active = tf.linalg.diag_part(gram) > 0.0
        w = fair_weights(gram, state.alpha, state.iterations, active)
        return tf.cast(w, task_gradients.dtype)[:, None] * task_gradients
