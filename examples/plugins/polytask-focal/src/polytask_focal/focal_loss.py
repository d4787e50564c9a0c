"""`focal`: the focal loss (Lin, Goyal, Girshick, He & Dollar, ICCV 2017, eq. 4).

    FL(p_t) = -(1 - p_t)^gamma log(p_t)

where p_t is the predicted probability of the true class. gamma = 0 is cross-entropy;
larger gamma down-weights examples that are already classified well. Binary targets
(0/1, or two classes) get one sigmoid unit, p_t = sigmoid(z) or 1 - sigmoid(z); targets
with more than two classes get a softmax over the classes. The paper's alpha-balancing
is left out: polytask's task `weight` and the weightings do the balancing across tasks.

Computed stably from logits: log p_t = -CE(z, y) (the cross-entropy with logits), so
FL = (1 - exp(-CE))^gamma * CE.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.losses import EPSILON, Loss, loss_dtype
from polytask.compiler.losses.binary_cross_entropy import encode_binary, sigmoid_predictions
from polytask.spec.registry import LOSSES
from polytask.spec.types import StrictModel


class FocalParams(StrictModel):
    gamma: Annotated[float, Field(strict=True, ge=0.0, le=100.0, allow_inf_nan=False)] = Field(2.0, description="Focusing parameter: 0 is cross-entropy; the paper's best is 2.")


def _binary(column) -> bool:
    """One sigmoid unit unless the target has more than two classes."""
    return not (column.categorical and column.num_classes is not None and column.num_classes > 2)


@LOSSES.register
class Focal(Loss):
    """Focal loss (Lin et al. 2017): cross-entropy scaled by (1 - p_t)^gamma; binary or K classes."""

    name = "focal"
    Params = FocalParams
    measures = "classification"

    def target_problem(self, params, column, target):
        problem = super().target_problem(params, column, target)
        if problem is not None:
            return problem
        if column.shape not in (None, (), (1,)):
            return f"focal needs one label per example, but '{target}' has shape {list(column.shape)}", None
        if column.categorical is False and getattr(column, "not_labels_because", None):
            return (f"focal needs 0/1 or class labels 0..K-1, but '{target}' holds {column.not_labels_because}",
                    "number the classes 0..K-1 in that column")
        return None

    def output_units(self, params, column):
        if column.categorical is None:
            return None
        return 1 if _binary(column) else column.num_classes

    def output_kind(self, params, column):
        if column is None or column.categorical is None:
            return None
        return "sigmoid" if _binary(column) else "softmax"

    def encode_labels(self, params, values, column):
        encoded = super().encode_labels(params, values, column)
        return encode_binary(self.name, encoded) if _binary(column) else encoded

    def per_example(self, params, labels, outputs):
        import tensorflow as tf

        outputs = loss_dtype(outputs)
        if outputs.shape[-1] == 1:
            cross_entropy = tf.nn.sigmoid_cross_entropy_with_logits(
                labels=tf.cast(labels[:, 0], outputs.dtype), logits=outputs[:, 0])
        else:
            cross_entropy = tf.nn.sparse_softmax_cross_entropy_with_logits(
                labels=tf.cast(labels[:, 0], tf.int32), logits=outputs)
        p_true = tf.exp(-cross_entropy)
        return tf.pow(tf.maximum(1.0 - p_true, 0.0), params.gamma) * cross_entropy

    def predictions(self, params, outputs):
        import tensorflow as tf

        if outputs.shape[-1] == 1:
            return sigmoid_predictions(outputs)
        probabilities = tf.nn.softmax(tf.cast(outputs, tf.float32), axis=-1)
        return {"probabilities": probabilities, "class": tf.argmax(probabilities, axis=-1)}

    def numpy_loss(self, params, labels, predictions):
        import numpy as np

        y = labels[:, 0]
        if "probability" in predictions:
            p = np.asarray(predictions["probability"])
            p_true = np.where(y == 1, p, 1 - p)
        else:
            p = np.asarray(predictions["probabilities"])
            p_true = p[np.arange(len(p)), y.astype(np.int64)]
        p_true = np.clip(p_true, EPSILON, 1.0)
        return -((1.0 - p_true) ** params.gamma) * np.log(p_true)
