"""Learning-rate schedules (`training.schedule`, tagged `kind:`), one module each.

A schedule descriptor owns its params model (every schedule has `warmup_steps`, from
`ScheduleParams`) and `learning_rate(params, base, total_steps)`: the Keras learning rate
(a float or a `LearningRateSchedule`, Keras imported only then). By default a warm-up
scales the rate linearly from 1/warmup to 1 over `warmup_steps` (cosine uses Keras' own
warm-up, from 0).
"""
from __future__ import annotations

import functools
from typing import Annotated

from pydantic import Field

from polytask.spec.registry import Concept
from polytask.spec.types import MAX_INT, StrictModel


class ScheduleParams(StrictModel):
    """Learning-rate schedule applied on top of the optimizer's learning_rate."""

    warmup_steps: Annotated[int, Field(strict=True, ge=0, le=MAX_INT)] = Field(0, description='Linear warm-up over these steps, up to the full rate (must be below training.steps).')


class Schedule(Concept):
    """Base of every schedule descriptor."""

    def decayed(self, params, base: float, total_steps: int):
        """The rate without warm-up: a float or a Keras schedule."""
        return base

    def learning_rate(self, params, base: float, total_steps: int):
        rate = self.decayed(params, base, total_steps)
        return linear_warmup(rate, params.warmup_steps) if params.warmup_steps else rate


def linear_warmup(rate, warmup: int):
    """`rate` (a float or a schedule) scaled linearly from 1/warmup up to 1 over `warmup` steps."""
    return _warmup_class()(rate, warmup)


@functools.lru_cache(maxsize=1)
def _warmup_class():
    import keras
    import tensorflow as tf

    class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
        def __init__(self, rate, warmup: int):
            self.rate, self.warmup = rate, warmup

        def __call__(self, step):
            base = self.rate(step) if callable(self.rate) else self.rate
            fraction = tf.minimum((tf.cast(step, tf.float32) + 1.0) / float(self.warmup), 1.0)
            return base * fraction

        def get_config(self):
            rate = keras.optimizers.schedules.serialize(self.rate) if callable(self.rate) else self.rate
            return {"rate": rate, "warmup": self.warmup}

    return LinearWarmup
