"""Layer builders: one module per layer kind of `polytask.spec.layers`.

A builder knows, in pure Python, the output shape and parameter count of its layer for an
input shape (used by `polytask plan` without TensorFlow), and builds the Keras layer:

    @LAYERS.register("dense")
    class Dense(LayerBuilder):
        def output_shape(self, params, input_shape): ...
        def count_params(self, params, input_shape): ...
        def build(self, params, name): ...   # imports keras lazily
"""
from __future__ import annotations

from math import prod

from polytask.compiler.registry import Registry
from polytask.errors import PolytaskError


class LayerBuilder:
    name = ""
    has_params = True
    stackable = False  # may appear in a stacked (per-task) head

    def output_shape(self, params, input_shape: tuple) -> tuple:
        return tuple(input_shape)

    def count_params(self, params, input_shape: tuple) -> int:
        return 0

    def build(self, params, name: str):
        raise NotImplementedError


LAYERS: Registry[LayerBuilder] = Registry("layer kind", __name__)


def infer_shapes(layers, input_shape: tuple, where: str = "model") -> list[tuple[str, tuple, int]]:
    """(kind, output shape, parameter count) per layer, checking that each layer fits its input."""
    out, shape = [], tuple(input_shape)
    for index, layer in enumerate(layers):
        builder = LAYERS.get(layer.kind)
        try:
            new_shape = builder.output_shape(layer.params, shape)
        except ValueError as exc:
            raise PolytaskError(
                f"{where} layer {index + 1} ({layer.kind}) does not fit its input of shape {list(shape)}: {exc}",
                hint="check the layer order (e.g. add `flatten` before dense layers on images)",
            ) from None
        out.append((layer.kind, new_shape, builder.count_params(layer.params, shape)))
        shape = new_shape
    return out


def flat_size(shape: tuple) -> int:
    return int(prod(shape)) if shape else 1
