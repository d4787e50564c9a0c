"""Shared parts of the regression losses: output = one linear unit per target value."""
from __future__ import annotations

from polytask.compiler.losses import Loss, loss_dtype


class RegressionLoss(Loss):
    measures = "regression"

    def label_width(self, params, column):
        return self.output_units(params, column) or 1

    def elementwise(self, params, error, xp):
        """The loss of each error element; `xp` is `tf.math` or `numpy`."""
        raise NotImplementedError

    def per_example(self, params, labels, outputs):
        import tensorflow as tf

        outputs = loss_dtype(outputs)
        error = outputs - tf.cast(labels[:, : outputs.shape[-1]], outputs.dtype)
        return tf.reduce_mean(self.elementwise(params, error, tf.math), axis=-1)

    def numpy_loss(self, params, labels, predictions):
        import numpy as np

        prediction = predictions["prediction"].reshape(len(labels), -1)
        return np.mean(self.elementwise(params, prediction - labels[:, : prediction.shape[1]], np), axis=-1)
