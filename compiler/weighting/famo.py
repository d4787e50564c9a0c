"""`famo`: Fast Adaptive Multitask Optimization (Liu, Liang, Chen, Stone & Liu, NeurIPS 2023, Alg. 1).

FAMO decreases every task's log-loss at about the same rate using only the losses. Task
logits xi give z = softmax(xi); the model descends

    sum_i z_i log(L_i - L*_i) / c,   c = sum_i z_i / (L_i - L*_i)    (c held constant),

a reweighting w_i = z_i / (c (L_i - L*_i)). After the model's update, the same batch's losses
are measured again and delta_i = log(L_i - L*_i)(before) - log(L_i - L*_i)(after); the logits
take an Adam step (rate `learning_rate`, L2 decay `weight_decay`, as in the official code) on
J_softmax(xi)^T delta: tasks whose loss fell fast lose weight. L*_i (`min_losses`, default 0) is
a lower bound of task i's loss. The program runs one extra forward pass per step for this
(no backward pass, no per-task gradients). A task absent from the batch gets no weight and
delta_i = 0 in that step.
"""
from typing import Optional

from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import FiniteFloat, Identifier, NonNegativeFloat, PositiveFloat, StrictModel

BETA_1, BETA_2, ADAM_EPSILON, EPSILON = 0.9, 0.999, 1e-8, 1e-8


class FamoParams(StrictModel):
    learning_rate: PositiveFloat = Field(0.025, description="Adam step size of the task logits (Liu et al. 2023).")
    weight_decay: NonNegativeFloat = Field(1e-3, description="L2 decay gamma of the task logits (Liu et al. 2023).")
    min_losses: Optional[dict[Identifier, FiniteFloat]] = Field(
        None, description="Per-task lower bound L*_i of the loss; default 0 (every loss is non-negative).")


def famo_factors(logits, losses, minimum, present):
    """w_i = z_i / (c D_i) with D = L - L* + eps and c = sum_present z_j / D_j."""
    import tensorflow as tf

    scores = tf.where(present, logits, tf.fill(tf.shape(logits), float("-inf")))
    z = tf.nn.softmax(scores)
    gap = tf.where(present, losses - minimum + EPSILON, tf.ones_like(losses))
    c = tf.reduce_sum(z / gap)
    return tf.where(present, z / (c * gap), tf.zeros_like(losses))


@WEIGHTINGS.register
class Famo(Transform):
    """FAMO (Liu et al. 2023): loss-only weights that equalise the rate of log-loss decrease."""

    name = "famo"
    Params = FamoParams
    needs_losses_after_step = True

    def spec_problems(self, params, task_names):
        return [(f"famo min_losses names task '{task}', which is not declared{did_you_mean(task, task_names)}",
                 ("min_losses", task), f"tasks: {one_of(task_names)}")
                for task in (params.min_losses or {}) if task not in task_names]

    def init(self, context):
        import numpy as np
        import tensorflow as tf

        params = self.params_of(context)
        count = context.num_tasks
        module = tf.Module(name="famo_weighting")
        module.learning_rate = float(params.learning_rate)
        module.weight_decay = float(params.weight_decay)
        given = params.min_losses or {}
        module.minimum = tf.constant(np.array([given.get(t, 0.0) for t in context.tasks], np.float32))
        module.logits = replica_variable(tf.zeros([count]), "logits")
        module.before = replica_variable(tf.zeros([count]), "before")  # the step's losses at theta_t
        module.first_moment = replica_variable(tf.zeros([count]), "first_moment")
        module.second_moment = replica_variable(tf.zeros([count]), "second_moment")
        module.updates = replica_variable(tf.constant(0.0), "updates")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        factors = famo_factors(tf.convert_to_tensor(state.logits), inputs.observed, state.minimum, inputs.present)
        return weights * tf.stop_gradient(factors), tf.constant(0.0)

    def update(self, state, inputs, weights):
        state.before.assign(inputs.observed)

    def after_step(self, state, inputs, losses_after):
        import tensorflow as tf

        present = inputs.present
        safe = lambda losses: tf.where(present, losses - state.minimum + EPSILON, tf.ones_like(losses))  # noqa: E731
        delta = tf.math.log(safe(state.before)) - tf.math.log(safe(losses_after))
        logits = tf.convert_to_tensor(state.logits)
        z = tf.nn.softmax(logits)
        grad = z * (delta - tf.reduce_sum(z * delta)) + state.weight_decay * logits  # J_softmax^T delta + L2
        t = state.updates.assign_add(1.0)
        m = state.first_moment.assign(BETA_1 * state.first_moment + (1 - BETA_1) * grad)
        v = state.second_moment.assign(BETA_2 * state.second_moment + (1 - BETA_2) * grad * grad)
        m_hat = m / (1 - tf.pow(BETA_1, t))
        v_hat = v / (1 - tf.pow(BETA_2, t))
        state.logits.assign(logits - state.learning_rate * m_hat / (tf.sqrt(v_hat) + ADAM_EPSILON))
