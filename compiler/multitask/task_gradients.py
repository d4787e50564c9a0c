"""Per-task gradients of a hard-sharing trunk from one batched backward pass.

Gradient-surgery weightings (PCGrad, MGDA, CAGrad, Nash-MTL, ...) need the T per-task
gradients g_i of the shared trunk parameters theta. Every training example belongs to one
task, so with delta_b = d(sum_j w_j L_j)/dh_b at the trunk output h_b = f(x_b; theta),

    g_i = d/dtheta sum_{b in task i} <delta_b, f(x_b; theta)>        (delta_b held constant).

A Jacobian of those T scalars (`tape.jacobian` with pfor) runs T backward passes, each over
the whole batch, although task i's scalar only involves its own rows. Here the trunk runs
once more on the batch laid out per task, [T, n, ...] (n = the largest task count in the
batch, shorter tasks padded with zero rows whose delta is zero), with one copy of theta per
task; the gradient of sum_i <delta_i, f(x_i; theta_i)> with respect to the T copies is the
T per-task gradients, from ONE batched backward pass over about as many rows as the batch.
The trunk runs through the layers' functional forms, which take per-task parameters (the
meta-learning forms: a batched matmul, a grouped convolution).

It applies when the trunk output of an example depends on that example alone: every layer
has a functional form and none normalises with batch statistics (batch norm couples the
rows of a batch; dropout and noise have no functional form). Convolutional trunks are left
out: their functional form is a grouped convolution, which TensorFlow's own CPU kernels
cannot differentiate (oneDNN and cuDNN can), and its per-task fallback would unroll T
convolutions into the graph. Otherwise, and under XLA (the per-task count n is only known
at run time), the program keeps the pfor Jacobian.
"""
from __future__ import annotations

from math import prod
from typing import Optional

import tensorflow as tf

from polytask.compiler.layers import infer_layers
from polytask.errors import PolytaskError

#: The padded layout holds at most T * B rows (every example in one task); above this many
#: bytes of activations in that worst case, the pfor Jacobian is used instead.
MAX_PADDED_BYTES = 512 * 2**20


class PerTaskTrunk:
    """Computes the [T, P] per-task gradients of a trunk's variables (in `variables` order)."""

    def __init__(self, architecture, variables: list, names: list[str], num_tasks: int):
        from polytask.compiler.meta.functional import FunctionalModel

        self.model = FunctionalModel(architecture)
        self.variables = variables
        self.names = names  # functional parameter name of each variable
        self.num_tasks = num_tasks

    def __call__(self, x, delta, task):
        """x: standardised inputs [B, ...]; delta: d(sum_j w_j L_j)/dh [B, d]; task: [B] ids."""
        from polytask.compiler.meta.functional import tile_params

        tasks = self.num_tasks
        order = tf.argsort(task, stable=True)
        sorted_task = tf.gather(task, order)
        counts = tf.math.bincount(task, minlength=tasks, maxlength=tasks, dtype=tf.int32)
        slot = tf.range(tf.shape(task)[0]) - tf.gather(tf.cumsum(counts, exclusive=True), sorted_task)
        width = tf.reduce_max(counts)
        where = tf.stack([sorted_task, slot], axis=1)

        def per_task(rows):
            return tf.scatter_nd(where, tf.gather(rows, order), tf.concat([[tasks, width], tf.shape(rows)[1:]], 0))

        x_tasks, delta_tasks = per_task(x), per_task(tf.cast(delta, tf.float32))
        params = {name: tf.convert_to_tensor(v) for name, v in zip(self.names, self.variables)}
        with tf.GradientTape() as tape:
            copies = tile_params(params, tasks)
            tape.watch(list(copies.values()))
            h = self.model(copies, x_tasks)
            h = tf.reshape(tf.cast(h, tf.float32), tf.shape(delta_tasks))
            target = tf.reduce_sum(h * delta_tasks)
        grads = tape.gradient(target, copies, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.concat([tf.reshape(grads[name], [tasks, -1]) for name in self.names], axis=1)


def per_task_trunk(trunk_specs, keras_layers, input_shape: tuple, num_tasks: int, local_batch: int,
                   order: list) -> Optional[PerTaskTrunk]:
    """A PerTaskTrunk for this trunk whose gradient columns follow the variables `order` (the
    program's shared variables), or None where it does not apply (see the module docstring)."""
    import keras

    from polytask.compiler.meta.architecture import Architecture, layer_name

    if keras.mixed_precision.global_policy().compute_dtype == "float16":
        return None  # the functional forms refuse float16 (no loss scaling through them)
    descriptors = [spec.descriptor for spec in trunk_specs]
    if not descriptors or any(d.supports("functional") is not None or d.batch_statistics for d in descriptors):
        return None
    try:
        plans = infer_layers(trunk_specs, tuple(input_shape), "structure.trunk", "functional")
    except PolytaskError:  # a layer whose functional shapes do not fit (the Keras form did)
        return None
    if any(len(p.input_shape) == 3 and p.weights for p in plans):
        return None  # convolutions: see the module docstring
    widest = max([prod(input_shape)] + [prod(p.output_shape) for p in plans])
    if num_tasks * local_batch * widest * 4 > MAX_PADDED_BYTES:
        return None
    architecture = Architecture(tuple(input_shape), tuple(plans), len(plans), plans[-1].output_shape)
    name_of = {}  # id(Keras variable) -> its functional parameter name
    for plan, layer in zip(plans, keras_layers):
        expected = [(w.role, tuple(w.shape)) for w in plan.weights if w.trainable]
        actual = [(v.name, tuple(v.shape)) for v in layer.trainable_weights]
        if expected != actual:  # a plugin layer whose Keras weights are not its functional roles
            return None
        name_of.update({id(v): f"{layer_name(plan)}/{role}" for v, (role, _) in zip(layer.trainable_weights, expected)})
    if not name_of or sorted(name_of) != sorted(map(id, order)):
        return None
    return PerTaskTrunk(architecture, list(order), [name_of[id(v)] for v in order], num_tasks)
