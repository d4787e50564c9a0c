"""TAG's lookahead affinity on one batch, for a compiled pooled or hard-sharing program.

Fifty et al. 2021, eq. (1)-(2): with shared parameters theta_s and the batch X^t,

    theta_s|i  = theta_s - eta * grad_{theta_s} L_i(X^t, theta_s, theta_i)
    Z_{i->j}   = 1 - L_j(X^t, theta_s|i, theta_j) / L_j(X^t, theta_s, theta_j)

Task-specific parameters stay where they are. The lookahead is a plain SGD step with the
optimizer's current learning rate eta (the paper's convention; its reference code also
divides Z by eta, a constant rescaling under a constant rate, which we do not do).

One call computes all T x T values in two vectorised passes instead of T: the Jacobian of
the T task losses with respect to the shared parameters (one pfor-vectorised backward pass,
[T, P]), then the T lookahead models' losses on the batch with `tf.vectorized_map` over the
T parameter sets (Keras `stateless_call` evaluates the network with substituted weights).
Losses are evaluated in inference mode (dropout off, batch-norm moving statistics), so
L(theta) and L(theta|i) differ only by the lookahead step, not by dropout noise.
"""
from __future__ import annotations

import tensorflow as tf


class LookaheadProbe:
    """`probe(batch, learning_rate)` -> (L [T], L_after [T(i), T(j)], counts [T]) as tensors."""

    def __init__(self, program):
        if program.replicas != 1:
            raise ValueError("the affinity probe runs on one replica")
        self.program = program
        net = program.net
        self.net = net
        shared_ids = {id(v) for v in net.shared_variables()}
        self.trainable = list(net.trainable_variables)
        self.non_trainable = list(net.non_trainable_variables)
        self.shared_positions = [i for i, v in enumerate(self.trainable) if id(v) in shared_ids]
        self.shared = [self.trainable[i] for i in self.shared_positions]
        self._probe = tf.function(self._probe_impl, autograph=False)

    def _losses(self, trainable_values, x, labels, task):
        outputs, _ = self.net.stateless_call(trainable_values, [tf.convert_to_tensor(v) for v in self.non_trainable],
                                             x, task, training=False)
        losses, _ = self.program.task_losses(outputs, labels, task)
        return losses

    def _probe_impl(self, x, labels, task, learning_rate):
        with tf.GradientTape() as tape:
            outputs = self.net(x, task, training=False)
            losses, counts = self.program.task_losses(outputs, labels, task)
        jacobian = tape.jacobian(losses, self.shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        base = [tf.convert_to_tensor(v) for v in self.trainable]
        rate = tf.cast(learning_rate, tf.float32)

        def after_step_on(task_gradients):
            values = list(base)
            for position, gradient in zip(self.shared_positions, task_gradients):
                values[position] = base[position] - rate * gradient
            return self._losses(values, x, labels, task)

        after = tf.vectorized_map(after_step_on, jacobian, fallback_to_while_loop=True)
        return losses, after, counts

    def __call__(self, batch, learning_rate: float):
        x, labels, task = batch
        return self._probe(x, labels, task, tf.constant(learning_rate, tf.float32))


def affinity_from(losses, after, counts):
    """(Z [T, T], valid [T, T]) from one probe; a pair is valid when both tasks are in the batch."""
    import numpy as np

    losses, after, counts = (np.asarray(a, dtype=np.float64) for a in (losses, after, counts))
    present = (counts > 0) & (losses > 0)
    valid = present[:, None] & present[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(valid, 1.0 - after / np.where(losses > 0, losses, 1.0)[None, :], 0.0)
    return z, valid
