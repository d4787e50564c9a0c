"""Value types shared by the spec models and by every concept's params model.

Descriptor modules (layers, losses, weightings, ... in the compiler and in plugins) build
their params models from these, without importing `polytask.spec.models` (which is itself
generated from those descriptors). Nothing here imports TensorFlow.
"""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from polytask.limits import MAX_INT

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
PositiveInt = Annotated[int, Field(strict=True, ge=1, le=MAX_INT)]
NonNegativeFloat = Annotated[float, Field(strict=True, ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(strict=True, gt=0.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "softplus", "linear"]


class StrictModel(BaseModel):
    """Base for every spec node: unknown keys are errors, values are not coerced silently
    (numbers are `strict`: `units: true` or `steps: "10"` is an error, not 1 or 10)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(StrictModel):
    """A concept without parameters (`- flatten`, `loss: mse`)."""


def range_problem(value, what: str):
    """(message, hint) when a [low, high] range has its low end above its high end, else None."""
    if value is not None and value[0] > value[1]:
        return (f"{what} range [{value[0]:g}, {value[1]:g}] has its low end above its high end",
                f"write [{value[1]:g}, {value[0]:g}]")
    return None
