"""`gradvac`: Gradient Vaccine (Wang, Tsvetkov, Firat & Cao, ICLR 2021, Alg. 1).

PCGrad only acts when two task gradients conflict (cosine < 0). GradVac sets an adaptive
target similarity instead: phi_hat_ij, an exponential moving average of the observed
cosines phi_ij (eq. 6: phi_hat <- (1 - beta) phi_hat + beta phi, starting at 0). For each
task i and each other task j in random order, with phi_ij = cos(g_i', g_j) of the
(already altered) g_i' and the original g_j: if phi_ij < phi_hat_ij,

    g_i' <- g_i' + ||g_i'|| (phi_hat sqrt(1 - phi^2) - phi sqrt(1 - phi_hat^2)) / (||g_j|| sqrt(1 - phi_hat^2)) g_j

(eq. 5), which raises the cosine to exactly phi_hat; then phi_hat_ij is updated. The update
is sum_i g_i'. `granularity: layer` does this separately for every shared variable (a
target per task pair and variable), `whole_model` once over the flattened shared
parameters. The order is stateless from the seed and the step, like PCGrad's.
"""
from typing import Literal

from pydantic import Field

from polytask.compiler.weighting import Transform, replica_variable
from polytask.spec.registry import WEIGHTINGS
from polytask.spec.types import Fraction, StrictModel


class GradVacParams(StrictModel):
    beta: Fraction = Field(0.01, description='EMA rate of the target cosine similarities (Wang et al. 2021).')
    granularity: Literal["whole_model", "layer"] = Field(
        "whole_model", description='One target per task pair over all shared parameters, or one per shared variable.')


@WEIGHTINGS.register
class GradVac(Transform):
    """Gradient Vaccine (Wang et al. 2021): raise task-gradient cosines to an EMA of their history."""

    name = "gradvac"
    Params = GradVacParams
    needs_task_gradients = True

    def init(self, context):
        import tensorflow as tf

        params = self.params_of(context)
        sizes = list(context.shared_sizes) if params.granularity == "layer" and context.shared_sizes else []
        module = tf.Module(name="gradvac")
        module.seed = int(context.seed)
        module.beta = float(params.beta)
        groups = max(len(sizes), 1)
        module.groups = groups
        # The shared variables' sizes: consecutive column ranges of J, one group each (None: one group).
        module.sizes = tuple(int(n) for n in sizes) if sizes else None
        count = context.num_tasks
        module.targets = replica_variable(tf.zeros([count, count, groups]), "targets")
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        count = task_gradients.shape[0]
        blocks = tf.split(task_gradients, list(state.sizes), axis=1) if state.sizes else [task_gradients]
        step = tf.cast(inputs.step, tf.int32)
        orders = tf.stack([tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([state.seed + i, step]))
                           for i in range(count)])  # row i: the order in which task i visits the others
        rows = tf.range(count)
        # Every altered g_i stays, within each group k, a combination sum_m C[k, i, m] g_m of the
        # original gradients, and each norm and dot product it needs is a quadratic form in the
        # group's Gramian G[k] = J_k J_k^T. So the rounds run on the [K, T, T] coefficients and
        # one matmul per group forms the rows (rounds over [T, P] rows were GradVac's whole cost).
        gramians = tf.stack([tf.matmul(block, block, transpose_b=True) for block in blocks])  # [K, T, T]
        norms = tf.sqrt(tf.maximum(tf.transpose(tf.linalg.diag_part(gramians)), 0.0))  # [T, K], original gradients
        coefficients = tf.eye(count, batch_shape=[state.groups], dtype=task_gradients.dtype)
        targets = tf.convert_to_tensor(state.targets)
        # Each task's sequence depends only on its own altered gradient and the originals, so
        # round k runs every task's k-th visit at once (T rounds instead of T^2 steps).
        for k in range(count):
            j = orders[:, k]
            pairs = tf.stack([rows, j], axis=1)
            other_norm = tf.gather(norms, j)
            products = tf.matmul(coefficients, gramians)  # [K, T, T]: g_i . g_m per group
            g_norm = tf.sqrt(tf.maximum(tf.transpose(tf.reduce_sum(products * coefficients, axis=2)), 0.0))
            visit = tf.one_hot(j, count, dtype=products.dtype)  # row i: task i's j
            dots = tf.transpose(tf.reduce_sum(products * visit[None], axis=2))  # [T, K]: g_i . g_{j_i}
            phi = dots / (g_norm * other_norm + 1e-8)
            target = tf.gather_nd(targets, pairs)  # [T, K]
            distinct = tf.not_equal(j, rows)[:, None]
            active = tf.logical_and(phi < target, distinct)
            w = g_norm * (target * tf.sqrt(tf.maximum(1.0 - phi * phi, 0.0)) - phi * tf.sqrt(1.0 - target * target)) / (
                other_norm * tf.sqrt(1.0 - target * target) + 1e-8)
            coefficients = coefficients + tf.transpose(tf.where(active, w, 0.0))[:, :, None] * visit[None]
            updated = tf.where(distinct, (1.0 - state.beta) * target + state.beta * phi, target)
            targets = tf.tensor_scatter_nd_update(targets, pairs, updated)
        g = tf.concat([tf.matmul(coefficients[k], block) for k, block in enumerate(blocks)], axis=1)
        state.targets.assign(targets)
        return g
