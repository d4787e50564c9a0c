"""`pcgrad`: gradient surgery (Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020, Alg. 1).

For each task i, and each other task j in random order: if g_i . g_j < 0, project g_i onto
the normal plane of g_j: g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j. The shared update is the
sum of the projected gradients; task-specific parameters are untouched. The order is drawn
from the seed and the step (stateless), so resumed runs repeat it exactly.
"""
from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS


def project_conflicting(gradients, order):
    """gradients [T, P]; order [T, T] (row i: the order in which task i visits the others).

    Task i's projections depend only on its own (projected) gradient and the original
    others, so round k applies every task's k-th projection at once: T vectorised rounds
    rather than T^2 sequential steps. Every projected g_i stays a combination sum_m C_im g_m
    of the original gradients, and each dot product it needs is C_i . G[:, j] with the
    Gramian G = J J^T, so the rounds run on the T x T coefficients C; one matmul C J at the
    end forms the rows (T rounds over [T, P] rows cost 4x the whole step at T = 32).
    """
    import tensorflow as tf

    count = gradients.shape[0]
    rows = tf.range(count)
    gramian = tf.matmul(gradients, gradients, transpose_b=True)
    squared = tf.linalg.diag_part(gramian)
    coefficients = tf.eye(count, dtype=gradients.dtype)
    for k in range(count):
        j = tf.cast(order[:, k], tf.int32)
        dot = tf.reduce_sum(coefficients * tf.gather(gramian, j), axis=1)  # g_i . g_j (G is symmetric)
        conflict = tf.logical_and(dot < 0.0, tf.not_equal(j, rows))
        step = (dot / tf.maximum(tf.gather(squared, j), 1e-20))[:, None] * tf.one_hot(j, count, dtype=gradients.dtype)
        coefficients = tf.where(conflict[:, None], coefficients - step, coefficients)
    return tf.matmul(coefficients, gradients)


@WEIGHTINGS.register
class PCGrad(Transform):
    """PCGrad gradient surgery (Yu et al. 2020): project away conflicting task gradients."""

    name = "pcgrad"
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        module = tf.Module(name="pcgrad")
        module.seed = int(context.seed)
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        count = task_gradients.shape[0]
        step = tf.cast(inputs.step, tf.int32)
        rows = [tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([state.seed + i, step]))
                for i in range(count)]
        return project_conflicting(task_gradients, tf.stack(rows))
