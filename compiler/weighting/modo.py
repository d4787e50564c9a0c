"""`modo`: MoDo, multi-objective gradient with double sampling (Chen, Fernando, Ying & Chen, NeurIPS 2023, Alg. 1).

A stochastic MGDA whose task weights take one projected-gradient step per training step on
the min-norm objective 0.5 ||G^T lambda||^2 (+ rho/2 ||lambda||^2):

    lambda <- Proj_simplex(lambda - gamma (G_1 G_2^T lambda + rho lambda)),   d = G_3^T lambda,

where G_1, G_2 and G_3 are independent estimates of the per-task gradients, so that the
weights' update is unbiased (double sampling) and d is independent of lambda. The paper
draws three mini-batches; polytask splits each batch into three disjoint slices
(`gradient_samples = 3`: one extra forward pass and the 3T per-task gradients per step). Without
slices (a caller that gives none, e.g. a deterministic objective) all three are the batch
gradients. lambda (state) starts uniform.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.compiler.weighting.simplex import project_to_simplex
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import NonNegativeFloat, PositiveFloat, StrictModel


class MoDoParams(StrictModel):
    gamma: PositiveFloat = Field(1e-3, description="Step size of the task weights lambda (Chen et al. 2023).")
    rho: NonNegativeFloat = Field(0.1, description="L2 regularisation of lambda's update.")


@WEIGHTINGS.register
class MoDo(Transform):
    """MoDo (Chen et al. 2023): stochastic MGDA with one projected step of the task weights per step."""

    name = "modo"
    Params = MoDoParams
    needs_task_gradients = True
    gradient_samples = 3

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        module = tf.Module(name="modo")
        module.gamma = float(params.gamma)
        module.rho = float(params.rho)
        module.task_weights = replica_variable(tf.fill([context.num_tasks], 1.0 / context.num_tasks), "lambda")
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        first, second, third = (tf.unstack(inputs.sample_gradients) if inputs.sample_gradients is not None
                                else (task_gradients,) * 3)
        lam = tf.convert_to_tensor(state.task_weights)
        direction = tf.linalg.matvec(first, tf.linalg.matvec(second, lam, transpose_a=True))
        lam = state.task_weights.assign(project_to_simplex(lam - state.gamma * (direction + state.rho * lam)))
        return lam[:, None] * third
