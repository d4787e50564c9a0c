"""`exponential`: the rate times `decay_rate` every `decay_steps` steps (continuously)."""
from __future__ import annotations

from pydantic import Field

from typing import Literal

from polytask.compiler.schedules import Schedule, ScheduleParams
from polytask.spec.registry import SCHEDULES
from polytask.spec.types import Fraction, PositiveInt


class ExponentialSchedule(ScheduleParams):
    kind: Literal["exponential"] = Field(description='`exponential`')
    decay_rate: Fraction = Field(0.96, description='Factor per decay_steps.')
    decay_steps: PositiveInt = Field(1000, description='Steps per decay_rate factor.')


@SCHEDULES.register
class Exponential(Schedule):
    """Exponential decay: times `decay_rate` every `decay_steps` steps."""

    name = "exponential"
    Params = ExponentialSchedule

    def decayed(self, params, base, total_steps):
        import keras

        return keras.optimizers.schedules.ExponentialDecay(base, params.decay_steps, params.decay_rate)
