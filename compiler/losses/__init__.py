"""Losses: one module per `loss:` name, each owning everything about that loss.

A loss descriptor declares, in one file:
- `name`, `Params` (if it takes parameters: `loss: {focal: {gamma: 3}}`), `measures`
  (`classification` or `regression`: which metrics fit it);
- TensorFlow-free plan facts about the target column (a `Column` of the spec's data facts
  or the compiler's `ColumnInfo`; fields may be None when unknown): `target_problem` (why
  this target does not fit, or None), `output_units` (the inferred output layer),
  `output_kind` (softmax, sigmoid or linear) and `label_width`;
- `encode_labels` (NumPy: labels as float32 rows, NaN = missing, so masking is uniform);
- its TensorFlow form `per_example` (labels [B, width], raw outputs [B, units] -> [B]),
  which serves multi-task training and, through `per_task`, meta-learning episodes;
- `predictions` (what a serving signature returns) and `numpy_loss` (the same loss from
  served predictions, so `polytask evaluate` on a SavedModel computes the same numbers).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, ClassVar, Optional

from polytask.errors import PolytaskError
from polytask.spec.registry import LOSSES, Concept

EPSILON = 1e-7


def loss_dtype(outputs):
    """Outputs in the dtype losses are computed in: float32, or float64 when given (gradient checks)."""
    import tensorflow as tf

    return outputs if outputs.dtype in (tf.float32, tf.float64) else tf.cast(outputs, tf.float32)


class Loss(Concept):
    """Base of every loss descriptor."""

    measures: ClassVar[str] = "regression"  # or "classification"

    def bound(self, params=None) -> "BoundLoss":
        """This loss with its parameters fixed (a params model, a plain dict from a plan, or None)."""
        if params is None or isinstance(params, dict):
            from pydantic import ValidationError

            try:
                params = self.Params.model_validate(params or {})
            except ValidationError as exc:  # e.g. a run directory's recorded parameters were edited
                raise PolytaskError(
                    f"loss {self.name}: parameters {params} are not valid ({exc.errors()[0]['msg']})",
                    hint="re-export the run with `polytask train --resume`") from None
        return BoundLoss(self, params)

    # ---- plan facts (no TensorFlow, no NumPy)
    def target_problem(self, params, column, target: str) -> Optional[tuple[str, Optional[str]]]:
        """(message, hint) when `column` cannot be this loss's target; None when it fits or is unknown."""
        if column.dtype == "string":
            numeric = ", ".join(LOSSES.where(lambda d: d.measures == "regression"))
            labels = ", ".join(LOSSES.where(lambda d: d.measures == "classification"))
            return (f"'{target}' holds text; loss {self.name} needs numbers",
                    f"encode the labels as integers 0..K-1 ({labels}) or numbers ({numeric})")
        return None

    def output_units(self, params, column) -> Optional[int]:
        """Width of the inferred output layer (None when the column is not known well enough)."""
        return prod(column.shape) if column.shape is not None else None

    def output_kind(self, params, column) -> Optional[str]:
        """`softmax`, `sigmoid` or `linear`: what the output units mean (None: not known yet)."""
        return "linear"

    def label_width(self, params, column) -> int:
        return 1

    # ---- NumPy
    def encode_labels(self, params, values, column):
        """Labels as float32 [n, label_width]; a missing label (negative class index) becomes NaN."""
        import numpy as np

        values = np.asarray(values)
        out = values.astype(np.float32)
        if values.dtype.kind in "iu":
            out[values < 0] = np.nan
        return out.reshape(len(out), -1) if len(out) else out.reshape(0, self.label_width(params, column))

    def numpy_loss(self, params, labels, predictions: dict):
        raise NotImplementedError

    # ---- TensorFlow
    def per_example(self, params, labels, outputs):
        """Per-example loss [B] from sanitized labels [B, >= label_width] and raw outputs [B, units]."""
        raise NotImplementedError

    def predictions(self, params, outputs) -> dict:
        """What a serving signature returns for this task's raw outputs."""
        import tensorflow as tf

        return {"prediction": tf.cast(outputs, tf.float32)}

    def per_task(self, params, outputs, targets):
        """Meta-learning: outputs [T, B, units], targets [T, B] (class ids) or [T, B, d] -> loss per task [T]."""
        import tensorflow as tf

        tasks, batch = tf.shape(outputs)[0], tf.shape(outputs)[1]
        flat_outputs = tf.reshape(outputs, [tasks * batch, -1])
        flat_labels = tf.reshape(tf.cast(targets, loss_dtype(outputs).dtype), [tasks * batch, -1])
        return tf.reduce_mean(tf.reshape(self.per_example(params, flat_labels, flat_outputs), [tasks, batch]), axis=1)


@dataclass(frozen=True)
class BoundLoss:
    """A loss descriptor with its parameters: what training, serving and evaluation call."""

    loss: Loss
    params: Any

    @property
    def name(self) -> str:
        return self.loss.name

    def encode_labels(self, values, column):
        return self.loss.encode_labels(self.params, values, column)

    def per_example(self, labels, outputs):
        return self.loss.per_example(self.params, labels, outputs)

    def predictions(self, outputs) -> dict:
        return self.loss.predictions(self.params, outputs)

    def numpy_loss(self, labels, predictions: dict):
        return self.loss.numpy_loss(self.params, labels, predictions)
