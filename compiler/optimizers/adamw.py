"""`adamw`: Adam with decoupled weight decay (Loshchilov & Hutter, 2019); decay 0.004 by default, as Keras."""
from __future__ import annotations

from polytask.compiler.optimizers import Optimizer
from polytask.compiler.optimizers.adam import AdamParams
from polytask.spec.registry import OPTIMIZERS

DEFAULT_WEIGHT_DECAY = 0.004  # keras.optimizers.AdamW's default


@OPTIMIZERS.register
class AdamW(Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter 2019)."""

    name = "adamw"
    Params = AdamParams

    def build(self, params, rate, clip):
        import keras

        decay = params.weight_decay if params.weight_decay is not None else DEFAULT_WEIGHT_DECAY
        return keras.optimizers.AdamW(rate, beta_1=params.beta_1, beta_2=params.beta_2, weight_decay=decay, **clip)
