"""Layer declarations in YAML: a list of single-key mappings such as `{dense: {units: 64}}`.

The `Layer` model is generated from the layer registry: one optional field per registered
layer kind, holding that kind's params model (defined with its descriptor in
`polytask.compiler.layers.<kind>` or in a plugin). Nothing here imports TensorFlow.
"""
from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, model_validator

from polytask.spec.registry import LAYERS


class LayerBase(BaseModel):
    """One layer: exactly one of the fields below is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    noun: ClassVar[str] = "layer kind"

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        # `- flatten` and `- {flatten: }` mean the same as `- {flatten: {}}`; a kind with a
        # `shorthand` field takes a bare value: `- {activation: relu}` is `{function: relu}`.
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            out = {}
            for key, params in value.items():
                if params is None:
                    params = {}
                shorthand = LAYERS.get(key).shorthand if key in LAYERS else None
                if shorthand and isinstance(params, str):
                    params = {shorthand: params}
                out[key] = params
            return out
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "LayerBase":
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(
                "a layer is a single-key mapping such as {dense: {units: 64}}; "
                f"got {len(chosen) or 'no'} kinds" + (f" ({', '.join(chosen)})" if chosen else "")
            )
        return self

    @property
    def kind(self) -> str:
        # Validation leaves exactly one field set (the `_exactly_one` check), so this is it.
        return next(iter(self.model_fields_set))

    @property
    def params(self) -> BaseModel:
        return getattr(self, self.kind)

    @property
    def descriptor(self):
        """The layer kind's descriptor (shapes, weights, TensorFlow forms)."""
        return LAYERS.get(self.kind)


Layer = LAYERS.single_key_model("Layer", LayerBase)
LayerList = list[Layer]
