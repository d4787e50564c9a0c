"""`static`: fixed per-task weights from the spec (`weights: {task: w}`), else each task's `weight`."""
import numpy as np

from polytask.compiler.weighting import TRANSFORMS, Transform
from polytask.errors import PolytaskError


@TRANSFORMS.register("static")
class Static(Transform):
    def init(self, context):
        import tensorflow as tf

        given = getattr(context.params, "weights", None) or {}
        unknown = sorted(set(given) - set(context.tasks))
        if unknown:
            raise PolytaskError(f"weighting static names unknown task '{unknown[0]}'",
                                hint=f"tasks are: {', '.join(context.tasks)}")
        values = np.array([given.get(t, context.base_weights[i]) for i, t in enumerate(context.tasks)], np.float32)
        module = tf.Module(name="static_weighting")
        module.weights_value = tf.constant(values)
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        return tf.identity(state.weights_value), tf.constant(0.0)
