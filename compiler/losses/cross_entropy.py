"""`cross_entropy`: softmax cross-entropy over K classes; output = K logits."""
import numpy as np

from polytask.compiler.losses import EPSILON, LOSSES, Loss
from polytask.errors import PolytaskError


@LOSSES.register("cross_entropy")
class CrossEntropy(Loss):
    kind = "categorical"

    def check_target(self, info, task, target):
        super().check_target(info, task, target)
        if not info.categorical or not info.num_classes:
            raise PolytaskError(
                f"task '{task}': cross_entropy needs a categorical target, but column '{target}' "
                f"holds {info.dtype} values of shape {list(info.shape)}",
                hint="use integer class labels 0..K-1, or a regression loss (mse, mae, huber)",
            )

    def output_units(self, info):
        return int(info.num_classes)

    def per_example(self, labels, outputs):
        import tensorflow as tf

        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels[:, 0], tf.int32), logits=tf.cast(outputs, tf.float32))

    def predictions(self, outputs):
        import tensorflow as tf

        probabilities = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1)}

    def numpy_loss(self, labels, predictions):
        p = predictions["probabilities"]
        picked = p[np.arange(len(p)), labels[:, 0].astype(np.int64)]
        return -np.log(np.clip(picked, EPSILON, 1.0))
