"""`nash_mtl`: multi-task learning as a bargaining game (Navon, Shamsian, Achituve, Maron,
Kawaguchi, Chechik & Fetaya, ICML 2022).

The update is the Nash bargaining solution d = sum_i a_i g_i where a > 0 solves

    G a = 1 / a      (elementwise; G = J J^T, Sec. 3 / Alg. 1),

so every task gets g_i.d = 1 / a_i: no task dominates and ||d||^2 = T. The paper solves it
with a sequence of convex programs in cvxpy. Here it is solved in TensorFlow: G a = 1/a is
exactly the stationarity condition of the strictly convex, self-concordant function
f(a) = 1/2 a^T G a - sum_i log a_i, so damped Newton steps (step 1 / (1 + Newton
decrement), which stays inside a > 0, quadratic convergence near the solution) on the
T x T system find the same unique solution without a solver dependency. It is solved on
G / s (s = mean of diag G) for conditioning and rescaled (a = a_s / sqrt(s)). The solution
is kept as state: the next solve starts from it (warm start), and with
`update_weights_every: k` the weights are recomputed only every k steps (reused between,
as in the authors' code).
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable, run_compiled
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import PositiveInt, StrictModel

REGULARIZATION = 1e-6  # added to the normalised Gramian's diagonal: a bounded solution for rank-deficient G


class NashMtlParams(StrictModel):
    update_weights_every: PositiveInt = Field(1, description='Recompute the bargaining weights every this many steps (reused between).')
    iterations: PositiveInt = Field(20, description='Damped Newton iterations per solve (warm-started from the last solution).')
    rep_grad: bool = Field(False, description='Use gradients w.r.t. the shared representation instead of the shared parameters.')


def bargaining_weights(gramian, start, iterations: int):
    """a > 0 with G a = 1/a, by damped Newton on 1/2 a^T G a - sum log a from `start`."""
    import tensorflow as tf

    eye = tf.eye(tf.shape(gramian)[0], dtype=gramian.dtype)
    g = gramian + REGULARIZATION * eye

    def body(i, a):
        gradient = tf.linalg.matvec(g, a) - 1.0 / a
        hessian = g + tf.linalg.diag(1.0 / (a * a))
        step = tf.linalg.solve(hessian, gradient[:, None])[:, 0]
        decrement = tf.sqrt(tf.maximum(tf.reduce_sum(gradient * step), 0.0))
        damping = tf.where(decrement < 0.25, 1.0, 1.0 / (1.0 + decrement))
        return i + 1, tf.maximum(a - damping * step, 1e-12)

    _, a = tf.while_loop(lambda i, a: i < iterations, body, (tf.constant(0), start))
    return a


@WEIGHTINGS.register
class NashMtl(Transform):
    """Nash-MTL (Navon et al. 2022): the Nash bargaining solution G a = 1/a among the task gradients."""

    name = "nash_mtl"
    Params = NashMtlParams
    needs_task_gradients = True
    needs = "gramian"

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="nash_mtl")
        module.params = self.params_of(context)
        module.normalized = replica_variable(tf.ones([context.num_tasks]), "normalized_weights")  # warm start
        module.weights = replica_variable(tf.ones([context.num_tasks]), "weights")
        module.solves = replica_variable(tf.constant(0, tf.int64), "solves")
        return module

    def combine(self, state, gramian, inputs):
        import tensorflow as tf

        params = state.params
        due = tf.equal(tf.math.floormod(tf.cast(inputs.step, tf.int64), params.update_weights_every), 0)
        due = tf.logical_or(due, tf.equal(state.solves, 0))

        def solve():
            scale = tf.maximum(tf.reduce_mean(tf.linalg.diag_part(gramian)), 1e-30)
            normalized = run_compiled(bargaining_weights, gramian / scale, tf.convert_to_tensor(state.normalized),
                                      params.iterations)
            return normalized, normalized / tf.sqrt(scale)

        normalized, weights = tf.cond(due, solve, lambda: (tf.convert_to_tensor(state.normalized),
                                                           tf.convert_to_tensor(state.weights)))
        state.normalized.assign(normalized)
        state.weights.assign(weights)
        state.solves.assign_add(tf.cast(due, tf.int64))
        return tf.identity(weights)
