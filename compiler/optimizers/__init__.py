"""Optimizers (`training.optimizer`) and the one builder every sharing pattern uses.

An optimizer descriptor owns its params model (the `{adam: {learning_rate: ...}}` of the
spec) and `build(params, rate, clip)`, which returns the Keras 3 optimizer (Keras is
imported only then). `make_optimizer` joins the spec's optimizer, its learning-rate
schedule (`polytask.compiler.schedules`) and `gradient_clip_norm`; create the optimizer
under the strategy scope.
"""
from __future__ import annotations

from typing import Optional

from polytask.spec.registry import OPTIMIZERS, SCHEDULES, Concept


class Optimizer(Concept):
    """Base of every optimizer descriptor: `Params` must have a `learning_rate`."""

    def build(self, params, rate, clip: dict):
        """The Keras optimizer with learning rate `rate` (a float or a schedule) and clipping `clip`."""
        raise NotImplementedError


def make_optimizer(training, steps: Optional[int] = None):
    """The spec's optimizer with its learning-rate schedule (Keras 3)."""
    kind, params = training.optimizer.kind, training.optimizer.params
    schedule = training.schedule
    rate = SCHEDULES.get(schedule.kind).learning_rate(schedule, params.learning_rate, int(steps or training.steps))
    clip = {"global_clipnorm": training.gradient_clip_norm} if training.gradient_clip_norm else {}
    return OPTIMIZERS.get(kind).build(params, rate, clip)
