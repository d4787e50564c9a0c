"""`gaussian_noise`: add zero-mean Gaussian noise while training (Keras `GaussianNoise`).

A regulariser: in training, x + eps with eps ~ N(0, stddev^2) element-wise; at
inference the identity. Weightless, so it stacks in per-task heads; it has no
meta-learning form, since noise would make the inner-loop steps random (as dropout).
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field

from polytask.compiler.layers import Layer
from polytask.spec.registry import LAYERS
from polytask.spec.types import StrictModel


class GaussianNoiseParams(StrictModel):
    stddev: Annotated[float, Field(strict=True, gt=0.0, le=100.0, allow_inf_nan=False)] = Field(description='Standard deviation of the noise added in training.')


@LAYERS.register
class GaussianNoise(Layer):
    """Add zero-mean Gaussian noise with standard deviation `stddev` while training."""

    name = "gaussian_noise"
    Params = GaussianNoiseParams
    stackable = True
    meta_unsupported = "noise would make inner-loop steps random"

    def keras(self, params, name):
        import keras

        return keras.layers.GaussianNoise(params.stddev, name=name)
