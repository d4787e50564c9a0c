"""`adam`: Adam (Kingma & Ba, 2015), optionally with decoupled weight decay."""
from __future__ import annotations

from pydantic import Field

from typing import Optional

from polytask.compiler.optimizers import Optimizer
from polytask.spec.registry import OPTIMIZERS
from polytask.spec.types import Fraction, NonNegativeFloat, PositiveFloat, StrictModel


class AdamParams(StrictModel):
    learning_rate: PositiveFloat = Field(1e-3, description='Step size (> 0).')
    beta_1: Fraction = Field(0.9, description='First-moment decay.')
    beta_2: Fraction = Field(0.999, description='Second-moment decay.')
    weight_decay: Optional[NonNegativeFloat] = Field(None, description='Decoupled weight decay (adamw: default 0.004; adam: none unless set).')


@OPTIMIZERS.register
class Adam(Optimizer):
    """Adam (Kingma & Ba 2015)."""

    name = "adam"
    Params = AdamParams

    def build(self, params, rate, clip):
        import keras

        return keras.optimizers.Adam(rate, beta_1=params.beta_1, beta_2=params.beta_2,
                                     weight_decay=params.weight_decay, **clip)
