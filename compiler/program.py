"""The contract between the compiler and the runtime.

A `Program` is what the compiler lowers a spec to: models, optimizers and data pipelines
already built under the active tf.distribute strategy scope. The runtime drives it (loop,
checkpoints, logs, early stopping, export) without knowing which sharing pattern it is.
"""
from __future__ import annotations

from typing import Any, Mapping, Protocol


class Program(Protocol):
    plan: Any  # polytask.compiler.plan.Plan

    def checkpoint_items(self) -> Mapping[str, Any]:
        """Trackables to save and restore (models, optimizer, step counters, data iterators, RNG state)."""

    def train_step(self) -> Mapping[str, Any]:
        """One optimizer update; returns scalar tensors: `loss` and per-task `loss/<task>` etc."""

    def evaluate(self, split: str) -> Mapping[str, float]:
        """Metrics on a split ('validation' or 'test'): keys like `<task>/accuracy`, `loss`."""

    def export(self, directory: str) -> None:
        """Write a SavedModel with one serving signature per task."""
