"""The networks of the hard and pooled sharing patterns, and the base of the per-task-head nets.

They take raw inputs and per-example task ids and return one output tensor per *head
group* (tasks with the same output shape): `TaskHeadsNet` is the base of the nets that end
in stacked per-task heads (hard here, the soft-sharing nets in
`polytask.compiler.multitask.experts`), `HardSharingNet` runs a shared trunk and stacked
heads, `PooledNet` one model over every task's data, optionally conditioned on the task
(one-hot or a learned embedding appended to the input). Inputs are standardised with the
training split's per-feature mean and standard deviation (constants in the graph, so the
SavedModel takes raw inputs too).
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from polytask.compiler.multitask.heads import StackedHead


def build_layers(layers, prefix: str) -> list:
    return [layer.descriptor.keras(layer.params, f"{prefix}_{i}_{layer.kind}") for i, layer in enumerate(layers)]


def run_layers(layers, h, training):
    for layer in layers:
        h = layer(h, training=training)  # Keras passes `training` on only to layers whose call takes it
    return h


def _flatten(h):
    if len(h.shape) > 2:
        return tf.reshape(h, [tf.shape(h)[0], int(np.prod(h.shape[1:]))])
    return h


class _Standardize:
    def __init__(self, mean: np.ndarray, std: np.ndarray):
        self.mean = tf.constant(mean.astype(np.float32))
        self.inverse_std = tf.constant((1.0 / std).astype(np.float32))

    def __call__(self, x):
        return (tf.cast(x, tf.float32) - self.mean) * self.inverse_std


class TaskHeadsNet(keras.layers.Layer):
    """Base of the nets with one stacked head per task after a shared part.

    A subclass gives `features(x, task, training)`: each row's representation for its own
    task (standardised inputs in), and `shared_layers()`: the layers more than one task uses.
    groups: list of (output_units, task ids in the group); `local_index[t]` is task t's row in
    its group's stacked head.
    """

    def __init__(self, head, groups, num_tasks: int, mean, std, **kwargs):
        super().__init__(**kwargs)
        self.standardize = _Standardize(mean, std)
        self.heads = [StackedHead(head, units, len(members), name=f"heads_{g}") for g, (units, members) in enumerate(groups)]
        local = np.zeros(num_tasks, np.int32)
        group = np.zeros(num_tasks, np.int32)
        for g, (_, members) in enumerate(groups):
            for row, task in enumerate(members):
                local[task], group[task] = row, g
        self.local_index = tf.constant(local)
        self.group_index = tf.constant(group)

    def features(self, x, task, training):
        raise NotImplementedError

    def shared_layers(self) -> list:
        raise NotImplementedError

    def shared_variables(self) -> list:
        return [v for layer in self.shared_layers() for v in layer.trainable_weights]

    def auxiliary_loss(self, x, task):
        """A regulariser the method adds to the loss, summed over the rows (None: none)."""
        return None

    def last_shared_kernel(self):
        """The last matrix the shared part applies (GradNorm's W)."""
        for layer in reversed(self.shared_layers()):
            kernels = [w for w in layer.trainable_weights if len(w.shape) >= 2]
            if kernels:
                return kernels[-1]
        return None

    def call(self, x, task, training=False):
        return self.decode(_flatten(self.features(self.standardize(x), task, training)), task, training)

    def decode(self, h, task, training=False):
        """The heads' outputs from each row's representation h [B, d]."""
        index = tf.gather(self.local_index, task)
        if len(self.heads) == 1:
            return [self.heads[0](h, index, training=training)]
        # Rows of other groups read head 0 of this group (their outputs here are never used).
        group = tf.gather(self.group_index, task)
        return [head(h, tf.where(tf.equal(group, g), index, 0), training=training) for g, head in enumerate(self.heads)]


class HardSharingNet(TaskHeadsNet):
    """Shared trunk + one stacked head per head group."""

    def __init__(self, trunk, head, groups, num_tasks: int, mean, std, **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="hard_sharing", **kwargs)
        self.trunk_specs = list(trunk)
        self.trunk = build_layers(trunk, "trunk")
        self.example_shape = tuple(int(d) for d in np.shape(mean))

    def shared_layers(self) -> list:
        return list(self.trunk)

    def last_shared_kernel(self):
        for layer in reversed(self.trunk):
            if layer.trainable_weights:
                return layer.trainable_weights[0]
        return None

    def features(self, x, task, training):
        return run_layers(self.trunk, x, training)

    def per_task_trunk(self, num_tasks: int, local_batch: int, shared: list):
        """Per-task trunk gradients in one batched pass (`task_gradients.PerTaskTrunk`), in the
        order of `shared`, or None where that does not apply."""
        from polytask.compiler.multitask.task_gradients import per_task_trunk

        return per_task_trunk(self.trunk_specs, self.trunk, self.example_shape, num_tasks, local_batch, shared)

    def represent(self, x, training=False):
        """The shared representation h [B, d] (trunk output), for representation-space gradient methods."""
        return _flatten(run_layers(self.trunk, self.standardize(x), training))


class PooledNet(keras.layers.Layer):
    """One model for the union of the tasks' data, optionally told which task a row is from."""

    def __init__(self, model, units: int, num_tasks: int, descriptor: str, embedding_dim: int, mean, std, **kwargs):
        super().__init__(name="pooled", **kwargs)
        self.standardize = _Standardize(mean, std)
        self.descriptor = descriptor
        self.num_tasks = num_tasks
        if descriptor == "embedding":
            self.embedding = keras.layers.Embedding(num_tasks, embedding_dim, name="task_embedding")
        self.body = build_layers(model, "model")
        self.output_layer = keras.layers.Dense(units, name="output")

    def shared_variables(self) -> list:
        return [v for layer in self.body + [self.output_layer] for v in layer.trainable_weights]

    def last_shared_kernel(self):
        for layer in reversed(self.body):
            if layer.trainable_weights:
                return layer.trainable_weights[0]
        return self.output_layer.kernel

    def call(self, x, task, training=False):
        h = self.standardize(x)
        if self.descriptor == "onehot":
            h = tf.concat([h, tf.one_hot(task, self.num_tasks, dtype=h.dtype)], axis=-1)
        elif self.descriptor == "embedding":
            h = tf.concat([h, tf.cast(self.embedding(task), h.dtype)], axis=-1)
        h = _flatten(run_layers(self.body, h, training))
        return [self.output_layer(h)]
