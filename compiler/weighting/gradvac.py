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
        import numpy as np
        import tensorflow as tf

        params = self.params_of(context)
        sizes = list(context.shared_sizes) if params.granularity == "layer" and context.shared_sizes else []
        module = tf.Module(name="gradvac")
        module.seed = int(context.seed)
        module.beta = float(params.beta)
        groups = max(len(sizes), 1)
        module.groups = groups
        # Column -> group id ([] means one group over whatever P the step passes).
        module.segments = tf.constant(np.repeat(np.arange(groups), sizes).astype(np.int32)) if sizes else None
        count = context.num_tasks
        module.targets = replica_variable(tf.zeros([count, count, groups]), "targets")
        return module

    def transform_gradients(self, state, task_gradients, inputs):
        import tensorflow as tf

        count = task_gradients.shape[0]
        if state.segments is None:
            segments = tf.zeros([tf.shape(task_gradients)[1]], tf.int32)
        else:
            segments = state.segments

        def per_group(values):  # [T, P] -> [T, K]
            return tf.transpose(tf.math.unsorted_segment_sum(tf.transpose(values), segments, state.groups))

        step = tf.cast(inputs.step, tf.int32)
        orders = tf.stack([tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.stack([state.seed + i, step]))
                           for i in range(count)])  # row i: the order in which task i visits the others
        rows = tf.range(count)
        norms = tf.sqrt(per_group(task_gradients * task_gradients))  # [T, K], original gradients
        targets = tf.convert_to_tensor(state.targets)
        g = task_gradients
        # Each task's sequence depends only on its own altered gradient and the originals, so
        # round k runs every task's k-th visit at once (T rounds instead of T^2 steps).
        for k in range(count):
            j = orders[:, k]
            pairs = tf.stack([rows, j], axis=1)
            other, other_norm = tf.gather(task_gradients, j), tf.gather(norms, j)
            g_norm = tf.sqrt(per_group(g * g))
            phi = per_group(g * other) / (g_norm * other_norm + 1e-8)
            target = tf.gather_nd(targets, pairs)  # [T, K]
            distinct = tf.not_equal(j, rows)[:, None]
            active = tf.logical_and(phi < target, distinct)
            w = g_norm * (target * tf.sqrt(tf.maximum(1.0 - phi * phi, 0.0)) - phi * tf.sqrt(1.0 - target * target)) / (
                other_norm * tf.sqrt(1.0 - target * target) + 1e-8)
            g = g + tf.gather(tf.where(active, w, 0.0), segments, axis=1) * other
            updated = tf.where(distinct, (1.0 - state.beta) * target + state.beta * phi, target)
            targets = tf.tensor_scatter_nd_update(targets, pairs, updated)
        state.targets.assign(targets)
        return g
