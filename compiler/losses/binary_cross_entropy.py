"""`binary_cross_entropy`: sigmoid cross-entropy for a 0/1 target; output = 1 logit."""
from polytask.compiler.losses import EPSILON, Loss, loss_dtype
from polytask.errors import PolytaskError
from polytask.spec.registry import LOSSES


def binary_target_problem(name: str, column, target: str):
    """Why `column` is not one 0/1 value per example (None when it is, or is not known)."""
    if column.shape not in (None, (), (1,)):
        return f"{name} needs one 0/1 value per example, but '{target}' has shape {list(column.shape)}", None
    if column.categorical and column.num_classes is not None and column.num_classes > 2:
        return (f"{name} needs a 0/1 target, but '{target}' has {column.num_classes} classes",
                "use cross_entropy for more than two classes")
    return None


def encode_binary(name: str, encoded):
    """Refuse labels other than 0 and 1 (missing labels are NaN and stay missing)."""
    import numpy as np

    present = encoded[np.isfinite(encoded)]
    if present.size and not np.isin(present, (0.0, 1.0)).all():
        raise PolytaskError(
            f"{name} needs targets that are 0 or 1 "
            f"(found values such as {sorted(set(present[~np.isin(present, (0.0, 1.0))].tolist()))[:3]})",
            hint="threshold the column into 0/1, or use a regression loss",
        )
    return encoded


def sigmoid_predictions(outputs):
    import tensorflow as tf

    probability = tf.sigmoid(tf.cast(outputs[:, 0], tf.float32))
    return {"probability": probability, "class": tf.cast(probability > 0.5, tf.int64)}


@LOSSES.register
class BinaryCrossEntropy(Loss):
    """Sigmoid cross-entropy for a 0/1 target; output = 1 logit."""

    name = "binary_cross_entropy"
    measures = "classification"

    def target_problem(self, params, column, target):
        return super().target_problem(params, column, target) or binary_target_problem(self.name, column, target)

    def output_units(self, params, column):
        return 1

    def output_kind(self, params, column):
        return "sigmoid"

    def encode_labels(self, params, values, column):
        return encode_binary(self.name, super().encode_labels(params, values, column))

    def per_example(self, params, labels, outputs):
        import tensorflow as tf

        logits = loss_dtype(outputs[:, 0])
        return tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(labels[:, 0], logits.dtype), logits=logits)

    def predictions(self, params, outputs):
        return sigmoid_predictions(outputs)

    def numpy_loss(self, params, labels, predictions):
        import numpy as np

        p = np.clip(predictions["probability"], EPSILON, 1 - EPSILON)
        y = labels[:, 0]
        return -(y * np.log(p) + (1 - y) * np.log(1 - p))
