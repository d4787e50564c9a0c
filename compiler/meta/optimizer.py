"""The outer-loop optimizer of a meta program, from `training.optimizer` and `training.schedule`."""
from __future__ import annotations

import keras


def learning_rate_schedule(base: float, schedule, total_steps: int):
    """A Keras learning-rate schedule for `training.schedule` (constant -> a float)."""
    if schedule.kind == "constant" and not schedule.warmup_steps:
        return base
    if schedule.kind == "cosine":
        warm = schedule.warmup_steps
        return keras.optimizers.schedules.CosineDecay(
            0.0 if warm else base, max(1, total_steps - warm), alpha=schedule.min_fraction,
            warmup_target=base if warm else None, warmup_steps=warm)
    if schedule.kind == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(base, schedule.decay_steps, schedule.decay_rate)
    return base


def build_optimizer(training):
    """A Keras optimizer (create it under the strategy scope)."""
    kind, params = training.optimizer.kind, training.optimizer.params
    lr = learning_rate_schedule(params.learning_rate, training.schedule, training.steps)
    clip = {"global_clipnorm": training.gradient_clip_norm} if training.gradient_clip_norm else {}
    if kind == "adam":
        return keras.optimizers.Adam(lr, beta_1=params.beta_1, beta_2=params.beta_2,
                                     weight_decay=params.weight_decay, **clip)
    if kind == "adamw":
        return keras.optimizers.AdamW(lr, beta_1=params.beta_1, beta_2=params.beta_2,
                                      weight_decay=params.weight_decay or 0.004, **clip)
    if kind == "sgd":
        return keras.optimizers.SGD(lr, momentum=params.momentum, nesterov=params.nesterov, **clip)
    if kind == "rmsprop":
        return keras.optimizers.RMSprop(lr, rho=params.rho, **clip)
    raise ValueError(f"unknown optimizer {kind}")
