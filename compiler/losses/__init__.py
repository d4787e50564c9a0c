"""Losses: one module per `loss:` name of the spec.

A loss decides what its task's output layer is (units, from the target's ColumnInfo), how
labels are encoded for the pipeline (float32 rows, NaN = missing, so masking is uniform),
the per-example loss in TensorFlow (training) and in NumPy from served predictions
(evaluation, so `polytask evaluate` on a SavedModel computes exactly the same numbers).
"""
from __future__ import annotations

import numpy as np

from polytask.compiler.registry import Registry
from polytask.errors import PolytaskError


class Loss:
    name = ""
    kind = "numeric"  # "categorical" | "binary" | "numeric": what the target must be

    def output_units(self, info) -> int:
        raise NotImplementedError

    def label_width(self, info) -> int:
        return 1

    def check_target(self, info, task: str, target: str) -> None:
        if info.dtype == "string":
            raise PolytaskError(
                f"task '{task}': target column '{target}' holds text; loss {self.name} needs numbers",
                hint="encode the labels as integers 0..K-1 (cross_entropy) or numbers (mse, mae, huber)",
            )

    def encode_labels(self, values: np.ndarray, info) -> np.ndarray:
        """Labels as float32 [n, label_width]; a missing label becomes NaN."""
        values = np.asarray(values)
        if values.dtype.kind in "iu":
            out = values.astype(np.float32)
            out[values < 0] = np.nan
        else:
            out = values.astype(np.float32)
        return out.reshape(len(out), -1) if len(out) else out.reshape(0, self.label_width(info))

    # ---- TensorFlow side (training)
    def per_example(self, labels, outputs):
        """Per-example loss [B] from sanitized labels [B, >=label_width] and raw outputs [B, units]."""
        raise NotImplementedError

    def predictions(self, outputs) -> dict:
        """What a serving signature returns for this task's raw outputs."""
        return {"prediction": outputs}

    # ---- NumPy side (evaluation on predictions)
    def numpy_loss(self, labels: np.ndarray, predictions: dict) -> np.ndarray:
        raise NotImplementedError


LOSSES: Registry[Loss] = Registry("loss", __name__)
EPSILON = 1e-7
