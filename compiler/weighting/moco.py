"""`moco`: MoCo, multi-objective gradient correction (Fernando, Shen, Liu, Chaudhury, Murugesan & Chen, ICLR 2023, Alg. 1).

Stochastic MGDA-style updates are biased because the min-norm weights are computed from
noisy gradients. MoCo tracks each task's gradient with a moving average and moves the task
weights by projected gradient steps instead of solving the min-norm problem each step:

    y_i    <- y_i - beta_k (y_i - g_i)                         beta_k  = beta / k^beta_sigma
    lambda <- Proj_simplex(lambda - gamma_k (Y Y^T + rho I) lambda)   gamma_k = gamma / k^gamma_sigma
    d       = Y^T lambda

(k = 1, 2, ...). With `normalize` (the authors' multi-task code, also LibMTL's) each g_i is
first rescaled to norm L_i (its loss), g_i / ||g_i|| * L_i. The tracked gradients (one per
task, the shared parameters' size) and lambda are state. The paper projects lambda onto the
simplex; the authors' code uses a softmax, which is not followed here.
"""
from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.compiler.weighting.simplex import project_to_simplex
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import Fraction, NonNegativeFloat, PositiveFloat, StrictModel

EPSILON = 1e-8


class MoCoParams(StrictModel):
    beta: Fraction = Field(0.5, description="Tracking rate of the gradients (Fernando et al. 2023).")
    beta_sigma: NonNegativeFloat = Field(0.5, description="Decay exponent of the tracking rate: beta / k^beta_sigma.")
    gamma: PositiveFloat = Field(0.1, description="Step size of the task weights lambda.")
    gamma_sigma: NonNegativeFloat = Field(0.5, description="Decay exponent of the weights' step size: gamma / k^gamma_sigma.")
    rho: NonNegativeFloat = Field(0.0, description="L2 regularisation of lambda's update.")
    normalize: bool = Field(True, description="Rescale each task gradient to norm equal to its loss before tracking (authors' code).")


@WEIGHTINGS.register
class MoCo(Transform):
    """MoCo (Fernando et al. 2023): tracked task gradients and projected-gradient task weights."""

    name = "moco"
    Params = MoCoParams
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        count = context.num_tasks
        module = tf.Module(name="moco")
        for key in ("beta", "beta_sigma", "gamma", "gamma_sigma", "rho"):
            setattr(module, key, float(getattr(params, key)))
        module.normalize = bool(params.normalize)
        module.tracked = replica_variable(tf.zeros([count, int(context.shared_size)]), "tracked_gradients")
        module.task_weights = replica_variable(tf.fill([count], 1.0 / count), "lambda")
        module.updates = replica_variable(tf.constant(0.0), "updates")
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        g = task_gradients
        if state.normalize:
            losses = inputs.observed if inputs.weights is None else inputs.weights * inputs.observed
            g = g / (tf.norm(g, axis=1, keepdims=True) + EPSILON) * losses[:, None]
        k = state.updates.assign_add(1.0)
        y = state.tracked.assign(state.tracked - state.beta / tf.pow(k, state.beta_sigma) * (state.tracked - g))
        count = int(g.shape[0])
        gram = tf.linalg.matmul(y, y, transpose_b=True) + state.rho * tf.eye(count)
        lam = tf.convert_to_tensor(state.task_weights)
        lam = state.task_weights.assign(
            project_to_simplex(lam - state.gamma / tf.pow(k, state.gamma_sigma) * tf.linalg.matvec(gram, lam)))
        return lam[:, None] * y
