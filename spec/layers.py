"""Layer declarations in YAML: a list of single-key mappings such as `{dense: {units: 64}}`.

Only the *configuration* of each layer lives here (validated without TensorFlow); the
compiler's layer registry turns each kind into TensorFlow code. To add a layer kind, add
its params model here and a builder in `polytask.compiler.layers`.
"""
from __future__ import annotations

from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

Activation = Literal["relu", "gelu", "tanh", "sigmoid", "elu", "selu", "swish", "softplus", "linear"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DenseParams(_Params):
    units: Annotated[int, Field(ge=1, le=1_000_000)]
    """Output width."""
    activation: Activation = "linear"
    """Activation after the layer."""
    use_bias: bool = True
    """Add a bias."""


class Conv2dParams(_Params):
    filters: Annotated[int, Field(ge=1, le=100_000)]
    """Output channels."""
    kernel_size: Annotated[int, Field(ge=1, le=64)] = 3
    """Square kernel size."""
    strides: Annotated[int, Field(ge=1, le=64)] = 1
    """Square stride."""
    padding: Literal["same", "valid"] = "same"
    """`same` keeps the size, `valid` shrinks it."""
    activation: Activation = "linear"
    """Activation after the layer."""


class Pool2dParams(_Params):
    pool_size: Annotated[int, Field(ge=1, le=64)] = 2
    """Square window and stride."""


class DropoutParams(_Params):
    rate: Annotated[float, Field(ge=0.0, lt=1.0)]
    """Fraction of units dropped in training."""


class NormParams(_Params):
    epsilon: Annotated[float, Field(gt=0.0)] = 1e-3
    """Added to the variance."""


class EmptyParams(_Params):
    pass


class ActivationParams(_Params):
    function: Activation
    """The activation; `- {activation: relu}` is short for `{function: relu}`."""


class Layer(BaseModel):
    """One layer: exactly one of the fields below is set."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    dense: Optional[DenseParams] = None
    conv2d: Optional[Conv2dParams] = None
    max_pool2d: Optional[Pool2dParams] = None
    batch_norm: Optional[NormParams] = None
    layer_norm: Optional[NormParams] = None
    dropout: Optional[DropoutParams] = None
    flatten: Optional[EmptyParams] = None
    activation: Optional[ActivationParams] = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `- flatten` and `- {flatten: }` mean the same as `- {flatten: {}}`;
        # `- {activation: relu}` is short for `- {activation: {function: relu}}`.
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            out = {}
            for key, params in value.items():
                if params is None:
                    params = {}
                if key == "activation" and isinstance(params, str):
                    params = {"function": params}
                out[key] = params
            return out
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "Layer":
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a layer is a single-key mapping such as {dense: {units: 64}}; "
                f"got {len(chosen) or 'no'} kinds" + (f" ({', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def params(self) -> _Params:
        return getattr(self, self.kind)


LayerList = list[Layer]
