"""`sdmgrad`: SDMGrad, stochastic direction-oriented multi-objective gradient descent (Xiao, Ban & Ji, NeurIPS 2023, Alg. 1).

The update stays close to the average gradient g0 = mean_i g_i while improving every task:

    w*  = argmin_{w in simplex}  0.5 ||G^T w||^2 + lambda w^T G g0
    d   = (G^T w* + lambda g0) / (1 + lambda),

where the w-problem is solved by `iterations` projected SGD steps (learning rate 5,
momentum 0.5 restarted each step, as in the authors' code) on the Gram matrix normalised by
the squared mean gradient norm, warm-started from the previous step's w (state). The paper
estimates G G^T from two independent mini-batches and d from a third (double sampling); the
polytask program computes one set of per-task gradients per step, so here all three are the
same batch: the deterministic variant of the method.
"""
from typing import Annotated

from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.compiler.weighting.simplex import project_to_simplex
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import NonNegativeFloat, StrictModel

LEARNING_RATE, MOMENTUM = 5.0, 0.5


class SdmGradParams(StrictModel):
    lamda: NonNegativeFloat = Field(0.3, description="Pull lambda towards the average gradient (Xiao et al. 2023).")
    iterations: Annotated[int, Field(strict=True, ge=1, le=1000)] = Field(
        20, description="Projected SGD steps of the task weights per training step.")


def sdmgrad_weights(gram, w, lamda: float, iterations: int):
    """The task weights after projected SGD with momentum on 0.5 w^T A w + lamda w^T A 1/T (A: normalised Gram)."""
    import tensorflow as tf

    diagonal = tf.maximum(tf.linalg.diag_part(gram), 0.0)
    scale = tf.reduce_mean(tf.sqrt(diagonal))
    a = gram / (scale * scale + 1e-8)
    towards_mean = tf.reduce_mean(a, axis=1)
    velocity = tf.zeros_like(w)
    for _ in range(iterations):
        grad = tf.linalg.matvec(a, w) + lamda * towards_mean
        velocity = MOMENTUM * velocity + grad
        w = project_to_simplex(w - LEARNING_RATE * velocity)
    return w


@WEIGHTINGS.register
class SdmGrad(Transform):
    """SDMGrad (Xiao et al. 2023): an MGDA direction regularised towards the average gradient."""

    name = "sdmgrad"
    Params = SdmGradParams
    needs_task_gradients = True
    gradient_samples = 3

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        module = tf.Module(name="sdmgrad")
        module.lamda = float(params.lamda)
        module.iterations = int(params.iterations)
        module.task_weights = replica_variable(tf.fill([context.num_tasks], 1.0 / context.num_tasks), "task_weights")
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        zeta, xi_1, xi_2 = (tf.unstack(inputs.sample_gradients) if inputs.sample_gradients is not None
                            else (task_gradients,) * 3)
        # float64: 20 steps of rate 5 with momentum amplify float32 rounding
        gram = tf.cast(tf.linalg.matmul(xi_1, xi_2, transpose_b=True), tf.float64)
        start = tf.cast(tf.convert_to_tensor(state.task_weights), tf.float64)
        w = state.task_weights.assign(tf.cast(sdmgrad_weights(gram, start, state.lamda, state.iterations), tf.float32))
        count = float(task_gradients.shape[0])
        return ((w + state.lamda / count) / (1.0 + state.lamda))[:, None] * zeta
