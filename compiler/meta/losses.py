"""Per-task losses and metrics for meta-learning: predictions [T, B, ...] -> one value per task.

The loss itself is the loss descriptor's (`polytask.compiler.losses.<name>`), the same
per-example function multi-task training uses, reduced over each task's examples (never
over tasks). Classifier outputs are restricted to the episode's `ways` first (a head may
have more units than an evaluation episode has classes).
"""
from __future__ import annotations

from typing import Optional

import tensorflow as tf

from polytask.spec.registry import LOSSES


class TaskLoss:
    """The family's loss: `loss(outputs, targets, ways)` -> [T]."""

    def __init__(self, name: str, kind: str, params=None):
        self.name = name
        self.kind = kind  # regression | classification (the family's)
        self.descriptor = LOSSES.get(name)
        self.params = params if params is not None else self.descriptor.default_params()

    def logits(self, outputs: tf.Tensor, ways: Optional[int]) -> tf.Tensor:
        """Classifier outputs restricted to the episode's `ways` (a head may have more units)."""
        return outputs if ways is None else outputs[..., :ways]

    def __call__(self, outputs: tf.Tensor, targets: tf.Tensor, ways: Optional[int] = None) -> tf.Tensor:
        if self.kind == "classification":
            outputs = self.logits(outputs, ways)
        return self.descriptor.per_task(self.params, outputs, targets)

    def metrics(self, outputs: tf.Tensor, targets: tf.Tensor, ways: Optional[int] = None) -> dict[str, tf.Tensor]:
        """Per-task metrics ([T] each): loss plus accuracy (classification) or mse (regression)."""
        out = {"loss": self(outputs, targets, ways)}
        if self.kind == "classification":
            predicted = tf.argmax(self.logits(outputs, ways), axis=-1, output_type=tf.int64)
            out["accuracy"] = tf.reduce_mean(tf.cast(tf.equal(predicted, targets), tf.float32), axis=1)
        else:
            out["mse"] = tf.reduce_mean(tf.square(outputs - targets), axis=[1, 2])
        return out
