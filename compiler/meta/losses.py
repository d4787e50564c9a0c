"""Per-task losses and metrics for meta-learning: predictions [T, B, ...] -> one value per task."""
from __future__ import annotations

from typing import Optional

import tensorflow as tf


class TaskLoss:
    """The family's loss, reduced over each task's examples (never over tasks)."""

    def __init__(self, name: str, kind: str):
        self.name = name
        self.kind = kind  # regression | classification

    def logits(self, outputs: tf.Tensor, ways: Optional[int]) -> tf.Tensor:
        """Classifier outputs restricted to the episode's `ways` (a head may have more units)."""
        return outputs if ways is None else outputs[..., :ways]

    def __call__(self, outputs: tf.Tensor, targets: tf.Tensor, ways: Optional[int] = None) -> tf.Tensor:
        if self.kind == "classification":
            logits = self.logits(outputs, ways)
            per_example = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=targets, logits=logits)
            return tf.reduce_mean(per_example, axis=1)
        error = outputs - targets
        if self.name == "mae":
            per_example = tf.abs(error)
        elif self.name == "huber":
            absolute = tf.abs(error)
            per_example = tf.where(absolute < 1.0, 0.5 * tf.square(error), absolute - 0.5)
        else:
            per_example = tf.square(error)
        return tf.reduce_mean(per_example, axis=list(range(1, per_example.shape.rank)))

    def metrics(self, outputs: tf.Tensor, targets: tf.Tensor, ways: Optional[int] = None) -> dict[str, tf.Tensor]:
        """Per-task metrics ([T] each): loss plus accuracy (classification) or mse (regression)."""
        out = {"loss": self(outputs, targets, ways)}
        if self.kind == "classification":
            predicted = tf.argmax(self.logits(outputs, ways), axis=-1, output_type=tf.int64)
            out["accuracy"] = tf.reduce_mean(tf.cast(tf.equal(predicted, targets), tf.float32), axis=1)
        else:
            out["mse"] = tf.reduce_mean(tf.square(outputs - targets), axis=[1, 2])
        return out
