"""The spec's optimizer and learning-rate schedule as a Keras 3 optimizer.

One place for `training.optimizer`, `training.schedule` and `training.gradient_clip_norm`,
used by every sharing pattern (create the optimizer under the strategy scope).
"""
from __future__ import annotations

from typing import Any, Optional

import keras
import tensorflow as tf


def make_optimizer(training, steps: Optional[int] = None):
    """The spec's optimizer with its learning-rate schedule (Keras 3)."""
    kind, params = training.optimizer.kind, training.optimizer.params
    schedule = training.schedule
    rate: Any = params.learning_rate
    total = int(steps or training.steps)
    if schedule.kind == "cosine":
        decay_steps = max(total - schedule.warmup_steps, 1)
        if schedule.warmup_steps:
            rate = keras.optimizers.schedules.CosineDecay(
                0.0, decay_steps, alpha=schedule.min_fraction,
                warmup_target=params.learning_rate, warmup_steps=schedule.warmup_steps)
        else:
            rate = keras.optimizers.schedules.CosineDecay(params.learning_rate, decay_steps, alpha=schedule.min_fraction)
    else:
        if schedule.kind == "exponential":
            rate = keras.optimizers.schedules.ExponentialDecay(params.learning_rate, schedule.decay_steps, schedule.decay_rate)
        if schedule.warmup_steps:
            rate = _LinearWarmup(rate, schedule.warmup_steps)
    clip = {"global_clipnorm": training.gradient_clip_norm} if training.gradient_clip_norm else {}
    if kind == "adam":
        return keras.optimizers.Adam(rate, beta_1=params.beta_1, beta_2=params.beta_2,
                                     weight_decay=params.weight_decay, **clip)
    if kind == "adamw":
        return keras.optimizers.AdamW(rate, beta_1=params.beta_1, beta_2=params.beta_2,
                                      weight_decay=params.weight_decay if params.weight_decay is not None else 0.004, **clip)
    if kind == "sgd":
        return keras.optimizers.SGD(rate, momentum=params.momentum, nesterov=params.nesterov, **clip)
    return keras.optimizers.RMSprop(rate, rho=params.rho, **clip)


class _LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Scale a rate (a float or another schedule) linearly from 1/warmup up to 1 over `warmup` steps."""

    def __init__(self, rate, warmup: int):
        self.rate, self.warmup = rate, warmup

    def __call__(self, step):
        base = self.rate(step) if callable(self.rate) else self.rate
        fraction = tf.minimum((tf.cast(step, tf.float32) + 1.0) / float(self.warmup), 1.0)
        return base * fraction

    def get_config(self):
        rate = keras.optimizers.schedules.serialize(self.rate) if callable(self.rate) else self.rate
        return {"rate": rate, "warmup": self.warmup}
