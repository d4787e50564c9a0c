"""The shape-level description of a meta-learning model: layers, their parameters, shapes.

Pure Python (no TensorFlow), so `polytask plan` can print it and the functional model
(`polytask.compiler.meta.functional`) can build from it. A model is the spec's
`structure.model` layers followed by an output layer the compiler infers from the family:

- regression families (sinusoid): `dense(1)`;
- class families with a gradient-based algorithm: `dense(ways)`, the classifier head;
- protonet: no output layer; the last layer's output is the embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Optional

from polytask.errors import PolytaskError

SPATIAL_KINDS = ("conv2d", "max_pool2d")
SUPPORTED_KINDS = ("dense", "conv2d", "max_pool2d", "batch_norm", "layer_norm", "flatten", "activation")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter tensor: its name (`<layer>/<role>`), shape and initializer."""

    name: str
    shape: tuple[int, ...]
    initializer: str  # glorot_uniform | zeros | ones
    layer: int

    @property
    def size(self) -> int:
        return int(prod(self.shape)) if self.shape else 1


@dataclass(frozen=True)
class LayerPlan:
    """One layer with its resolved input/output shapes (per example, without batch axes)."""

    index: int
    name: str
    kind: str
    config: dict
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    params: tuple[ParamSpec, ...] = ()
    inferred: bool = False  # the output layer the compiler added

    @property
    def param_count(self) -> int:
        return sum(p.size for p in self.params)


@dataclass(frozen=True)
class Architecture:
    """The whole model: input shape, layers, and which layer starts the head (for ANIL)."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerPlan, ...]
    head_start: int  # index of the first head layer (the inferred output layer, or the last layer)
    output_shape: tuple[int, ...] = field(default=())

    @property
    def params(self) -> list[ParamSpec]:
        return [p for layer in self.layers for p in layer.params]

    @property
    def param_count(self) -> int:
        return sum(p.size for p in self.params)

    def head_params(self) -> list[ParamSpec]:
        return [p for layer in self.layers[self.head_start:] for p in layer.params]


def _error(index: int, kind: str, message: str, hint: str) -> PolytaskError:
    return PolytaskError(f"structure.model[{index}] ({kind}): {message}", hint=hint)


def _same_or_valid(size: int, kernel: int, stride: int, padding: str) -> int:
    if padding == "same":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def build_architecture(
    layers,
    input_shape: tuple[int, ...],
    output_units: Optional[int],
) -> Architecture:
    """Resolve shapes and parameters of `layers` (spec Layer models) applied to `input_shape`.

    `output_units` adds the inferred dense output layer (None: no output layer, protonet).
    Raises PolytaskError for a layer that cannot take its input (conv on flat data, dense on
    an image without flatten, a layer kind meta models do not support).
    """
    plans: list[LayerPlan] = []
    shape = tuple(int(d) for d in input_shape)
    specs = [(layer.kind, layer.params.model_dump()) for layer in layers]
    if output_units is not None:
        specs.append(("dense", {"units": int(output_units), "activation": "linear", "use_bias": True}))
    for index, (kind, config) in enumerate(specs):
        inferred = output_units is not None and index == len(specs) - 1
        name = "output" if inferred else f"layer{index}_{kind}"
        if kind not in SUPPORTED_KINDS:
            raise _error(index, kind, "this layer kind is not supported in meta-learning models",
                         f"use: {', '.join(SUPPORTED_KINDS)} (dropout would make inner-loop steps random)")
        params: list[ParamSpec] = []
        spatial = len(shape) == 3
        if kind == "dense":
            if len(shape) != 1:
                raise _error(index, kind, f"dense needs flat input but gets shape {list(shape)}",
                             "add `- flatten` before the first dense layer")
            units = int(config["units"])
            params.append(ParamSpec(f"{name}/kernel", (shape[0], units), "glorot_uniform", index))
            if config.get("use_bias", True):
                params.append(ParamSpec(f"{name}/bias", (units,), "zeros", index))
            out = (units,)
        elif kind == "conv2d":
            if not spatial:
                raise _error(index, kind, f"conv2d needs image input (H, W, C) but gets shape {list(shape)}",
                             "put conv2d/max_pool2d layers before flatten, on an image family")
            k, s, pad, filters = config["kernel_size"], config["strides"], config["padding"], config["filters"]
            h, w = _same_or_valid(shape[0], k, s, pad), _same_or_valid(shape[1], k, s, pad)
            if h < 1 or w < 1:
                raise _error(index, kind, f"the image is too small ({shape[0]}x{shape[1]}) for this layer",
                             "use padding: same, fewer pooling layers or larger images")
            params.append(ParamSpec(f"{name}/kernel", (k, k, shape[2], filters), "glorot_uniform", index))
            params.append(ParamSpec(f"{name}/bias", (filters,), "zeros", index))
            out = (h, w, filters)
        elif kind == "max_pool2d":
            if not spatial:
                raise _error(index, kind, f"max_pool2d needs image input but gets shape {list(shape)}",
                             "put pooling layers before flatten")
            p = config["pool_size"]
            out = (shape[0] // p, shape[1] // p, shape[2])
            if out[0] < 1 or out[1] < 1:
                raise _error(index, kind, f"pooling a {shape[0]}x{shape[1]} map by {p} leaves nothing",
                             "remove a pooling layer or use larger images")
        elif kind in ("batch_norm", "layer_norm"):
            channels = shape[-1]
            params.append(ParamSpec(f"{name}/gamma", (channels,), "ones", index))
            params.append(ParamSpec(f"{name}/beta", (channels,), "zeros", index))
            out = shape
        elif kind == "flatten":
            out = (int(prod(shape)),)
        else:  # activation
            out = shape
        plans.append(LayerPlan(index, name, kind, dict(config), shape, out, tuple(params), inferred))
        shape = out
    if not any(p.params for p in plans):
        raise PolytaskError("the meta model has no parameters to learn",
                            hint="add dense or conv2d layers under structure.model")
    if output_units is not None:
        head_start = len(plans) - 1
    else:
        with_params = [p.index for p in plans if p.params]
        head_start = with_params[-1]
    return Architecture(tuple(int(d) for d in input_shape), tuple(plans), head_start, shape)
