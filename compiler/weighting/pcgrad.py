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
    rather than T^2 sequential steps.
    """
    import tensorflow as tf

    count = gradients.shape[0]
    rows = tf.range(count)
    squared = tf.reduce_sum(gradients * gradients, axis=1)
    g = gradients
    for k in range(count):
        j = tf.cast(order[:, k], tf.int32)
        other = tf.gather(gradients, j)
        dot = tf.reduce_sum(g * other, axis=1)
        conflict = tf.logical_and(dot < 0.0, tf.not_equal(j, rows))
        g = tf.where(conflict[:, None], g - (dot / tf.maximum(tf.gather(squared, j), 1e-20))[:, None] * other, g)
    return g


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
