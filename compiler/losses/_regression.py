"""Shared parts of the regression losses: output = one unit per target value."""
import numpy as np

from polytask.compiler.losses import Loss
from polytask.errors import PolytaskError


class RegressionLoss(Loss):
    kind = "numeric"

    def check_target(self, info, task, target):
        super().check_target(info, task, target)

    def output_units(self, info):
        return int(np.prod(info.shape)) if info.shape else 1

    def label_width(self, info):
        return self.output_units(info)

    def elementwise(self, error, xp):
        raise NotImplementedError

    def per_example(self, labels, outputs):
        import tensorflow as tf

        width = outputs.shape[-1]
        error = tf.cast(outputs, tf.float32) - labels[:, :width]
        return tf.reduce_mean(self.elementwise(error, tf.math), axis=-1)

    def predictions(self, outputs):
        import tensorflow as tf

        return {"prediction": tf.cast(outputs, tf.float32)}

    def numpy_loss(self, labels, predictions):
        prediction = predictions["prediction"].reshape(len(labels), -1)
        return np.mean(self.elementwise(prediction - labels[:, : prediction.shape[1]], np), axis=-1)
