"""`cross_entropy`: softmax cross-entropy over K classes; output = K logits."""
from polytask.compiler.losses import EPSILON, Loss, loss_dtype
from polytask.spec.registry import LOSSES


@LOSSES.register
class CrossEntropy(Loss):
    """Softmax cross-entropy over K classes; output = K logits."""

    name = "cross_entropy"
    measures = "classification"

    def target_problem(self, params, column, target):
        problem = super().target_problem(params, column, target)
        if problem is not None:
            return problem
        if column.categorical is False and getattr(column, "not_labels_because", None):
            return (f"cross_entropy needs class labels 0..K-1, but '{target}' holds {column.not_labels_because}",
                    "number the classes 0..K-1 in that column (an empty cell is a missing label)")
        if column.categorical is False or (column.categorical and not column.num_classes):
            shape = "continuous values" if not column.shape else f"values of shape {list(column.shape)}"
            regression = LOSSES.where(lambda d: d.measures == "regression")
            return (f"cross_entropy needs a categorical target (class labels 0..K-1), but '{target}' holds {shape}",
                    f"use a regression loss ({', '.join(regression)}) for a continuous target")
        return None

    def output_units(self, params, column):
        return column.num_classes

    def output_kind(self, params, column):
        return "softmax"

    def per_example(self, params, labels, outputs):
        import tensorflow as tf

        return tf.nn.sparse_softmax_cross_entropy_with_logits(
            labels=tf.cast(labels[:, 0], tf.int32), logits=loss_dtype(outputs))

    def predictions(self, params, outputs):
        import tensorflow as tf

        probabilities = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1)}

    def numpy_loss(self, params, labels, predictions):
        import numpy as np

        p = predictions["probabilities"]
        picked = p[np.arange(len(p)), labels[:, 0].astype(np.int64)]
        return -np.log(np.clip(picked, EPSILON, 1.0))
