"""The shape-level description of a meta-learning model: layers, their parameters, shapes.

Pure Python (no TensorFlow), so `polytask plan` can print it and the functional model
(`polytask.compiler.meta.functional`) can build from it. Shapes and weights come from the
layers' own descriptors (`polytask.compiler.layers.infer_layers`, form `functional`): the
same shape inference as every other model. A model is the spec's `structure.model` layers
followed by an output layer the compiler infers from the family and loss:

- regression families (sinusoid): `dense(1)`;
- class families with a gradient-based algorithm: `dense(ways)`, the classifier head;
- protonet: no output layer; the last layer's output is the embedding.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import prod
from typing import Optional

from polytask.compiler.layers import LayerPlan, infer_layers, output_layer
from polytask.errors import PolytaskError


@dataclass(frozen=True)
class ParamSpec:
    """One trained parameter tensor: its name (`<layer>/<role>`), shape and initializer."""

    name: str
    shape: tuple[int, ...]
    initializer: str  # glorot_uniform | zeros | ones
    layer: int

    @property
    def size(self) -> int:
        return int(prod(self.shape)) if self.shape else 1


def layer_name(plan: LayerPlan) -> str:
    return "output" if plan.inferred else f"layer{plan.index}_{plan.kind}"


@dataclass(frozen=True)
class Architecture:
    """The whole model: input shape, layers, and which layer starts the head (for ANIL)."""

    input_shape: tuple[int, ...]
    layers: tuple[LayerPlan, ...]
    head_start: int  # index of the first head layer (the inferred output layer, or the last layer)
    output_shape: tuple[int, ...] = field(default=())
    #: MAML++ per-step batch norm (BNWB): batch-norm weights get a leading axis of this many
    #: inner steps, one set per step (1: one set, plain MAML).
    batch_norm_steps: int = 1

    def per_step(self, layer: LayerPlan) -> bool:
        """This layer's weights have one set per inner step (MAML++ per-step batch norm)."""
        return self.batch_norm_steps > 1 and layer.descriptor.batch_statistics

    def layer_params(self, layer: LayerPlan) -> list[ParamSpec]:
        """The trained parameters of one layer (batch norm's moving statistics are not: meta
        models always normalise with the task's own statistics)."""
        steps = (self.batch_norm_steps,) if self.per_step(layer) else ()
        return [ParamSpec(f"{layer_name(layer)}/{w.role}", steps + tuple(w.shape), w.initializer, layer.index)
                for w in layer.weights if w.trainable]

    def per_step_params(self) -> list[ParamSpec]:
        """Parameters with one set per inner step: meta-learned, never adapted in the inner loop."""
        return [p for layer in self.layers if self.per_step(layer) for p in self.layer_params(layer)]

    @property
    def params(self) -> list[ParamSpec]:
        return [p for layer in self.layers for p in self.layer_params(layer)]

    @property
    def param_count(self) -> int:
        return sum(p.size for p in self.params)

    def head_params(self) -> list[ParamSpec]:
        return [p for layer in self.layers[self.head_start:] for p in self.layer_params(layer)]


def build_architecture(layers, input_shape: tuple[int, ...], output_units: Optional[int],
                       batch_norm_steps: int = 1) -> Architecture:
    """Resolve shapes and parameters of `layers` (spec Layer models) applied to `input_shape`.

    `output_units` adds the inferred dense output layer (None: no output layer, protonet);
    `batch_norm_steps` > 1 gives batch-norm layers one set of weights per inner step.
    Raises PolytaskError for a layer that cannot take its input or has no functional form.
    """
    specs = list(layers) + ([output_layer(output_units)] if output_units is not None else [])
    plans = infer_layers(specs, input_shape, "structure.model", "functional",
                         inferred_from=len(layers) if output_units is not None else None)
    trained = [p.index for p in plans if any(w.trainable for w in p.weights)]
    if not trained:
        raise PolytaskError("the meta model has no parameters to learn",
                            hint="add dense or conv2d layers under structure.model")
    head_start = len(plans) - 1 if output_units is not None else trained[-1]
    return Architecture(tuple(int(d) for d in input_shape), tuple(plans), head_start,
                        plans[-1].output_shape if plans else tuple(input_shape), int(batch_norm_steps))
