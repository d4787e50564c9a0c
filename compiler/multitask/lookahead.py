"""`Lookahead`: what a weighting that trains on held-out data may evaluate inside a step (Auto-Lambda).

The program builds one per replica step when a transform sets `needs_validation`: the model's
trainable values, and per-task losses of this step's training batch and of a validation batch
at *other* parameter values (the model is called statelessly; its variables are untouched).
Losses are this replica's contributions to the global per-task means: `all_reduce` sums them.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable


@dataclass
class Lookahead:
    values: Callable[[], list]  # the trainable variables' current values, in the order losses expect
    train_losses: Callable[[list], Any]  # values -> [T] on the step's training batch
    validation_losses: Callable[[list], Any]  # values -> [T] on the step's validation batch
    all_reduce: Callable[[Any], Any]  # sum over replicas (identity on one)
    learning_rate: Any  # the model optimizer's current learning rate
