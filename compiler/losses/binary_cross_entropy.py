"""`binary_cross_entropy`: sigmoid cross-entropy for a 0/1 target; output = 1 logit."""
import numpy as np

from polytask.compiler.losses import EPSILON, LOSSES, Loss
from polytask.errors import PolytaskError


@LOSSES.register("binary_cross_entropy")
class BinaryCrossEntropy(Loss):
    kind = "binary"

    def check_target(self, info, task, target):
        super().check_target(info, task, target)
        if info.shape not in ((), (1,)) or (info.categorical and (info.num_classes or 0) > 2):
            raise PolytaskError(
                f"task '{task}': binary_cross_entropy needs a 0/1 target, but column '{target}' "
                + (f"has {info.num_classes} classes" if info.categorical else f"has shape {list(info.shape)}"),
                hint="use cross_entropy for more than two classes",
            )

    def output_units(self, info):
        return 1

    def encode_labels(self, values, info):
        out = super().encode_labels(values, info)
        present = out[np.isfinite(out)]
        if present.size and not np.isin(present, (0.0, 1.0)).all():
            raise PolytaskError(
                "binary_cross_entropy needs targets that are 0 or 1 "
                f"(found values such as {sorted(set(present[~np.isin(present, (0.0, 1.0))].tolist()))[:3]})",
                hint="threshold the column into 0/1, or use a regression loss",
            )
        return out

    def per_example(self, labels, outputs):
        import tensorflow as tf

        return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels[:, 0], logits=tf.cast(outputs[:, 0], tf.float32))

    def predictions(self, outputs):
        import tensorflow as tf

        probability = tf.sigmoid(tf.cast(outputs[:, 0], tf.float32))
        return {"probability": probability, "class": tf.cast(probability > 0.5, tf.int64)}

    def numpy_loss(self, labels, predictions):
        p = np.clip(predictions["probability"], EPSILON, 1 - EPSILON)
        y = labels[:, 0]
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
