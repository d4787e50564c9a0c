"""`cosine`: cosine decay (Loshchilov & Hutter, SGDR, 2017) over the steps after the warm-up."""
from __future__ import annotations

from pydantic import Field

from typing import Literal

from polytask.compiler.schedules import Schedule, ScheduleParams
from polytask.spec.registry import SCHEDULES
from polytask.spec.types import Fraction


class CosineSchedule(ScheduleParams):
    kind: Literal["cosine"] = Field(description='`cosine`')
    min_fraction: Fraction = Field(0.0, description='Final learning rate as a fraction of the initial one.')


@SCHEDULES.register
class Cosine(Schedule):
    """Cosine decay to `min_fraction` of the rate over the steps after the warm-up."""

    name = "cosine"
    Params = CosineSchedule

    def learning_rate(self, params, base, total_steps):
        import keras

        decay_steps = max(total_steps - params.warmup_steps, 1)
        if params.warmup_steps:  # Keras' own warm-up: linear from 0 to `base`, then the decay
            return keras.optimizers.schedules.CosineDecay(0.0, decay_steps, alpha=params.min_fraction,
                                                          warmup_target=base, warmup_steps=params.warmup_steps)
        return keras.optimizers.schedules.CosineDecay(base, decay_steps, alpha=params.min_fraction)
