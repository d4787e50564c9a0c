"""`upgrad`: Unconflicting Projection of Gradients for Jacobian descent (Quinton & Rey, 2024,
"Jacobian Descent for Multi-Objective Optimization", Sec. 3 / Prop. 1).

Each task's (preference-weighted) gradient u_i^T J, u_i = e_i / T, is projected onto the
dual cone of the rows of J {x : J x >= 0} (so it conflicts with no task), and the
projections are averaged. By Prop. 1 the projection of J^T u is J^T v with

    v = argmin_v v^T G v   s.t. v >= u      (G = J J^T),

so the update is J^T sum_i v_i. G is first normalised by its trace (Frobenius norm of J
squared; 0 below `norm_eps`) and regularised with `reg_eps` I, as in the authors' TorchJD.
The T box-constrained QPs are solved together in TensorFlow by accelerated projected
gradient descent (FISTA with adaptive restart, step 1 / lambda_max), instead of the
authors' quadprog.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, run_compiled
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import NonNegativeFloat, PositiveInt, StrictModel


class UpGradParams(StrictModel):
    norm_eps: NonNegativeFloat = Field(1e-4, description='Below this squared Frobenius norm of J the update is 0 (TorchJD default).')
    reg_eps: NonNegativeFloat = Field(1e-4, description='Ridge added to the normalised Gramian for positive definiteness (TorchJD default).')
    iterations: PositiveInt = Field(300, description='Accelerated projected-gradient iterations of the QPs.')
    rep_grad: bool = Field(False, description='Use gradients w.r.t. the shared representation instead of the shared parameters.')


def project_weights(u, gramian, iterations: int):
    """Rows v_i = argmin v^T G v s.t. v >= u_i, for u [T, T] and G [T, T] positive definite."""
    import tensorflow as tf

    step = 1.0 / (2.0 * tf.reduce_max(tf.linalg.eigvalsh(gramian)))

    def objective(v):
        return tf.reduce_sum(v * tf.matmul(v, gramian), axis=-1, keepdims=True)

    def body(i, v, y, t):
        new = tf.maximum(y - step * 2.0 * tf.matmul(y, gramian), u)
        t_next = 0.5 * (1.0 + tf.sqrt(1.0 + 4.0 * t * t))
        momentum = new + ((t - 1.0) / t_next) * (new - v)
        restart = objective(new) > objective(v)  # adaptive restart (O'Donoghue & Candes 2015), per row
        return i + 1, new, tf.where(restart, new, momentum), tf.where(restart, tf.ones_like(t), t_next)

    ones = tf.ones_like(u[:, :1])
    _, v, _, _ = tf.while_loop(lambda i, *_: i < iterations, body, (tf.constant(0), u, u, ones))
    return v


@WEIGHTINGS.register
class UpGrad(Transform):
    """UPGrad (Quinton & Rey 2024): average of the task gradients projected onto the dual cone of the Jacobian."""

    name = "upgrad"
    Params = UpGradParams
    needs_task_gradients = True
    needs = "gramian"

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="upgrad")
        module.params = self.params_of(context)
        return module

    def combine(self, state, gramian, inputs):
        import tensorflow as tf

        params = state.params
        count = tf.shape(gramian)[0]
        trace = tf.linalg.trace(gramian)
        normalized = tf.where(trace < params.norm_eps, tf.zeros_like(gramian), gramian / tf.maximum(trace, 1e-30))
        regularized = normalized + params.reg_eps * tf.eye(count, dtype=gramian.dtype)
        u = tf.eye(count, dtype=gramian.dtype) / tf.cast(count, gramian.dtype)
        return tf.reduce_sum(run_compiled(project_weights, u, regularized, params.iterations), axis=0)
