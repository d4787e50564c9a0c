"""`pcgrad`: gradient surgery (Yu, Kumar, Gupta, Levine, Hausman & Finn, NeurIPS 2020, Alg. 1).

For each task i, and each other task j in random order: if g_i . g_j < 0, project g_i onto
the normal plane of g_j: g_i <- g_i - (g_i . g_j / ||g_j||^2) g_j. The shared update is the
sum of the projected gradients; task-specific parameters are untouched. The order is drawn
from the seed and the step (stateless), so resumed runs repeat it exactly.
"""
from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS


def project_conflicting(gradients, order):
    """gradients [T, P]; order [T, T] (row i: the order in which task i visits the others)."""
    import tensorflow as tf

    count = gradients.shape[0]
    projected = []
    for i in range(count):
        g = gradients[i]
        for k in range(count):
            j = order[i, k]
            other = tf.gather(gradients, j)
            dot = tf.reduce_sum(g * other)
            conflict = tf.logical_and(dot < 0.0, tf.not_equal(j, i))
            g = tf.where(conflict, g - dot / tf.maximum(tf.reduce_sum(other * other), 1e-20) * other, g)
        projected.append(g)
    return tf.stack(projected)


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
