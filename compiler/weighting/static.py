"""`static`: fixed per-task weights from the spec (`weights: {task: w}`), else each task's `weight`."""
from typing import Optional

from pydantic import Field

from polytask.compiler.weighting import Transform
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import Identifier, NonNegativeFloat, StrictModel


class StaticParams(StrictModel):
    weights: Optional[dict[Identifier, NonNegativeFloat]] = Field(
        None, description="Per-task weights; default: each task's `weight`."
    )


@WEIGHTINGS.register
class Static(Transform):
    """Fixed per-task weights from the spec, else each task's `weight`."""

    name = "static"
    Params = StaticParams
    multi_task = False

    def spec_problems(self, params, task_names):
        return [(f"static weighting names task '{task}', which is not declared{did_you_mean(task, task_names)}",
                 ("weights", task), f"tasks: {one_of(task_names)}")
                for task in (params.weights or {}) if task not in task_names]

    def init(self, context):
        import numpy as np
        import tensorflow as tf

        given = self.params_of(context).weights or {}  # names checked by spec_problems
        values = np.array([given.get(t, context.base_weights[i]) for i, t in enumerate(context.tasks)], np.float32)
        module = tf.Module(name="static_weighting")
        module.weights_value = tf.constant(values)
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        return tf.identity(state.weights_value), tf.constant(0.0)
