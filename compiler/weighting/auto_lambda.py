"""`auto_lambda`: Auto-Lambda, task weights learned by a one-step lookahead on validation data.

Auto-Lambda (Liu, James, Davison & Johns, TMLR 2022, eq. 3-5) treats the task weights lambda
as meta-parameters trained on held-out data: with the virtual step

    theta' = theta - alpha grad_theta sum_i lambda_i L_i(train; theta),

lambda descends the primary tasks' validation loss at theta', L_val(theta'). Its gradient,
-alpha grad^2_{lambda, theta} L(train) grad_theta' L_val(theta'), is approximated by central
finite differences: with d = grad_theta' L_val(theta'), eps = 0.01 / ||d|| and
theta(+/-) = theta +/- eps d,

    grad_lambda_i = -alpha (L_i(train; theta+) - L_i(train; theta-)) / (2 eps),

since d/dlambda_i of sum_j lambda_j L_j is L_i. lambda (initially `initial_weight`) takes an
Adam step at `learning_rate` each training step, then weights the step's losses. alpha is
the model optimizer's current learning rate; the virtual step is plain gradient descent (the
paper's equation; the authors' code also folds in SGD momentum and weight decay, which
polytask's optimizers do not expose uniformly). `primary` tasks (default all: the
multi-task setting) define the validation loss; the others are auxiliary.

Needs a validation split (checked by `polytask check`). Each step costs two extra
gradient passes and two extra forward passes, evaluated at other parameter values without
touching the model's variables (`Lookahead`, provided by the program; batch-norm statistics
are not updated by them).
"""
from typing import Optional

from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import Identifier, PositiveFloat, StrictModel

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-8


class AutoLambdaParams(StrictModel):
    initial_weight: PositiveFloat = Field(0.1, description="Starting value of every task weight (Liu et al. 2022).")
    learning_rate: PositiveFloat = Field(1e-4, description="Adam step size of the task weights.")
    primary: Optional[list[Identifier]] = Field(
        None, description="Tasks whose validation loss the weights minimise; default: every task.")


@WEIGHTINGS.register
class AutoLambda(Transform):
    """Auto-Lambda (Liu et al. 2022): task weights that minimise the validation loss after a lookahead step."""

    name = "auto_lambda"
    Params = AutoLambdaParams
    needs_validation = True

    def spec_problems(self, params, task_names):
        problems = [(f"auto_lambda primary names task '{task}', which is not declared{did_you_mean(task, task_names)}",
                     ("primary", i), f"tasks: {one_of(task_names)}")
                    for i, task in enumerate(params.primary or []) if task not in task_names]
        if params.primary is not None and not params.primary:
            problems.append(("auto_lambda needs at least one primary task", ("primary",), "remove `primary` for all tasks"))
        return problems

    def init(self, context):
        import numpy as np
        import tensorflow as tf

        params = self.params_of(context)
        count = context.num_tasks
        module = tf.Module(name="auto_lambda_weighting")
        module.learning_rate = float(params.learning_rate)
        chosen = set(params.primary or context.tasks)
        module.primary = tf.constant(np.array([t in chosen for t in context.tasks], np.float32))
        module.task_weights = replica_variable(tf.fill([count], float(params.initial_weight)), "task_weights")
        module.first_moment = replica_variable(tf.zeros([count]), "first_moment")
        module.second_moment = replica_variable(tf.zeros([count]), "second_moment")
        module.updates = replica_variable(tf.constant(0.0), "updates")
        return module

    def weigh(self, state, inputs, weights):
        import tensorflow as tf

        return weights * tf.stop_gradient(tf.convert_to_tensor(state.task_weights)), tf.constant(0.0)

    def meta_gradient(self, state, lookahead):
        """d L_val(theta') / d lambda by the finite-difference rule (every replica gets the same value)."""
        import tensorflow as tf

        def gradient(loss_of, values):
            with tf.GradientTape() as tape:
                tape.watch(values)
                loss = loss_of(values)
            return [lookahead.all_reduce(tf.convert_to_tensor(g))
                    for g in tape.gradient(loss, values, unconnected_gradients=tf.UnconnectedGradients.ZERO)]

        theta = lookahead.values()
        lam = tf.convert_to_tensor(state.task_weights)
        alpha = tf.cast(lookahead.learning_rate, tf.float32)
        grads = gradient(lambda values: tf.reduce_sum(lam * lookahead.train_losses(values)), theta)
        virtual = [v - alpha * g for v, g in zip(theta, grads)]
        direction = gradient(lambda values: tf.reduce_sum(state.primary * lookahead.validation_losses(values)), virtual)
        eps = 0.01 / tf.maximum(tf.linalg.global_norm(direction), 1e-12)
        plus = lookahead.all_reduce(lookahead.train_losses([v + eps * d for v, d in zip(theta, direction)]))
        minus = lookahead.all_reduce(lookahead.train_losses([v - eps * d for v, d in zip(theta, direction)]))
        return -alpha * (plus - minus) / (2.0 * eps)

    def before_step(self, state, lookahead) -> None:
        import tensorflow as tf

        grad = tf.stop_gradient(self.meta_gradient(state, lookahead))
        t = state.updates.assign_add(1.0)
        m = state.first_moment.assign(BETA_1 * state.first_moment + (1 - BETA_1) * grad)
        v = state.second_moment.assign(BETA_2 * state.second_moment + (1 - BETA_2) * grad * grad)
        step = state.learning_rate * (m / (1 - tf.pow(BETA_1, t))) / (tf.sqrt(v / (1 - tf.pow(BETA_2, t))) + EPSILON)
        state.task_weights.assign(state.task_weights - step)
