"""`keras`: any `keras.layers` class by name, with its constructor arguments (`config`).

    trunk:
      - keras: {layer: LSTM, config: {units: 32, return_sequences: true}}
      - keras: {layer: MultiHeadAttention, config: {num_heads: 2, key_dim: 8}}   # self-attention
      - keras: {layer: GlobalAveragePooling1D}

`polytask check` validates the name, the config's keys and the required arguments against
the committed list spec/keras_layers.json (`polytask.spec.catalogs`), without TensorFlow.
Shapes and weights come from Keras itself: `polytask plan` builds the layer on a symbolic
input of the planned shape (Keras' `compute_output_shape` / `compute_output_spec`), so it
imports TensorFlow when a spec uses this layer, and says so in its notes; `check` does not
know the shapes after such a layer and checks only the forms of the layers behind it.

A layer list is a chain: each layer takes the previous one's output. Merge layers (`Add`,
`Concatenate`, ...) take several inputs and are refused; attention layers that take a query
and a value (`MultiHeadAttention`, `Attention`, ...) attend to their own input
(self-attention: query = value = the previous output). Layers that load files or run code
(`Lambda`, `TFSMLayer`, wrappers of other frameworks) are refused.

Inputs are standardised (training mean and standard deviation) unless the first layer reads
ids (`RAW_INPUTS`: `Embedding`, ...), which then gets the token ids as they are in the data.

Meta-learning runs layers as functions of per-task weights; a Keras layer owns its weights,
so it cannot be used there (a `check` error). Keras layers cannot be per-task heads either.
"""
from __future__ import annotations

import json
from functools import lru_cache
from typing import Any, ClassVar

from pydantic import Field, ValidationError, field_validator, model_validator

from polytask.compiler.layers import Layer, LayerShapeError, Weight, require_keras
from polytask.spec.catalogs import names, unknown
from polytask.spec.registry import LAYERS
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import StrictModel

# Refused whatever the catalog says, and why (they need files, code or another framework).
REFUSED = {
    "Lambda": "it runs Python code stored in the config",
    "TFSMLayer": "it loads a SavedModel from a path",
    "TorchModuleWrapper": "it wraps a PyTorch module",
    "JaxLayer": "it wraps a JAX function", "FlaxLayer": "it wraps a Flax module",
    "InputLayer": "the input is made from the data", "Layer": "it is the abstract base class",
    "Wrapper": "it is an abstract base class", "Pipeline": "it holds a list of layers; list them in the spec instead",
}


# Layers that read integer ids or categories: as the first layer, they get the inputs unstandardised.
RAW_INPUTS = {"Embedding", "ReversibleEmbedding", "CategoryEncoding", "IntegerLookup", "Hashing", "HashedCrossing"}


class KerasLayerParams(StrictModel):
    """A `keras.layers` class by name, built with `config` as its constructor arguments."""

    layer: str = Field(description="The `keras.layers` class name (`LSTM`, `GRU`, `Conv1D`, `MultiHeadAttention`, ...).")
    config: dict[str, Any] = Field({}, description="Constructor arguments of that class, as in its Keras documentation.")

    @field_validator("layer")
    @classmethod
    def _known(cls, value: str) -> str:
        known = names("keras_layers")
        if value not in known:
            raise ValueError(unknown("keras_layers", "Keras layer", value))
        if value in REFUSED:
            raise ValueError(f"Keras layer {value} cannot be used in a spec: {REFUSED[value]}")
        if known[value]["inputs"] == "several":
            raise ValueError(f"Keras layer {value} merges several inputs, but a layer list is a chain of "
                             "one-input layers")
        return value

    @model_validator(mode="after")
    def _arguments(self) -> "KerasLayerParams":
        facts = names("keras_layers").get(self.layer)
        if facts is None:
            return self
        accepted = set(facts["arguments"]) - {"name"}
        for key in self.config:
            if key not in accepted:
                raise ValueError(f"Keras layer {self.layer} takes no argument {key!r}"
                                 f"{did_you_mean(key, sorted(accepted))}; it takes {one_of(sorted(accepted), 40)}")
        lacking = [k for k in facts["required"] if k not in self.config]
        if lacking:
            raise ValueError(f"Keras layer {self.layer} needs {', '.join(lacking)} under `config`")
        for nested in _nested_layers(self.config):  # Bidirectional's `layer`, RNN's `cell`, ...
            try:
                KerasLayerParams(layer=nested["class_name"], config=nested.get("config") or {})
            except ValidationError as exc:
                problem = exc.errors()[0]["msg"].removeprefix("Value error, ")
                raise ValueError(f"the layer {nested['class_name']!r} inside `config`: {problem}") from None
        return self


def _with_module(value):
    """Nested layer dicts as Keras 3 deserializes them: `module: keras.layers` added where missing."""
    if isinstance(value, dict):
        out = {k: _with_module(v) for k, v in value.items()}
        if isinstance(out.get("class_name"), str) and "module" not in out:
            out["module"] = "keras.layers"
        return out
    if isinstance(value, list):
        return [_with_module(v) for v in value]
    return value


def _nested_layers(value):
    """Layers given as `{class_name: NAME, config: {...}}` inside a config (Keras' serialized form)."""
    if isinstance(value, dict):
        if isinstance(value.get("class_name"), str):
            yield value
        else:
            for item in value.values():
                yield from _nested_layers(item)
    elif isinstance(value, list):
        for item in value:
            yield from _nested_layers(item)


def _key(params) -> tuple:
    return params.layer, json.dumps(params.config, sort_keys=True, default=str)


def construct(params, name=None):
    """The Keras layer of `params` (wrapped for self-attention); config errors are LayerShapeErrors."""
    import keras

    cls = getattr(keras.layers, params.layer, None)
    if cls is None:
        raise LayerShapeError(f"Keras {keras.__version__} has no layer {params.layer}",
                              "install the Keras version spec/keras_layers.json was generated from")
    try:
        # from_config is the constructor plus Keras' deserialization of nested layers
        # (`Bidirectional: {layer: {class_name: GRU, config: {units: 8}}}`)
        layer = cls.from_config({**_with_module(params.config), **({"name": name} if name else {})})
    except (TypeError, ValueError, KeyError) as exc:
        raise LayerShapeError(f"Keras could not build {params.layer}({_shown(params.config)}): {exc}",
                              "fix the arguments under `config`") from None
    if names("keras_layers")[params.layer]["inputs"] == "self_attention":
        return _self_attention(layer, name)
    return layer


def _shown(config: dict) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


def _self_attention(inner, name):
    import keras

    class SelfAttention(keras.layers.Layer):
        """An attention layer given its input as both query and value."""

        def __init__(self, inner, **kwargs):
            super().__init__(**kwargs)
            self.inner = inner

        def call(self, x, training=None):
            if isinstance(self.inner, (keras.layers.Attention, keras.layers.AdditiveAttention)):
                return self.inner([x, x], training=training)
            return self.inner(x, x, training=training)

        def compute_output_shape(self, input_shape):
            return input_shape

    return SelfAttention(inner, name=f"{name or inner.name}_self")


@lru_cache(maxsize=256)
def _built(key: tuple, input_shape: tuple):
    """(output shape, weights) of a layer built on a symbolic input (batch axis left out)."""
    keras = require_keras("`keras` layers")

    layer_name, config = key
    layer = construct(KerasLayerParams(layer=layer_name, config=json.loads(config)))
    try:
        out = layer(keras.KerasTensor((None, *input_shape)))
    except Exception as exc:  # Keras says why the input does not fit (ValueError, TypeError, ...)
        text = " ".join(str(exc).split())
        raise LayerShapeError(f"Keras {layer_name}: {text[:400]}",
                              "check the layer order and `config` (e.g. LSTM and Conv1D take (steps, features) "
                              "inputs)") from None
    if not hasattr(out, "shape"):
        raise LayerShapeError(f"Keras {layer_name} returns {type(out).__name__}, not one tensor",
                              "set `config` so the layer returns one tensor (e.g. return_state: false)")
    shape = tuple(out.shape[1:])
    if any(d is None for d in shape):
        raise LayerShapeError(f"Keras {layer_name} gives an output of unknown size {list(shape)}",
                              "polytask needs fixed per-example shapes")
    weights = tuple(Weight(w.path, tuple(int(d) for d in w.shape), trainable=bool(w.trainable))
                    for w in layer.weights)
    return tuple(int(d) for d in shape), weights


@LAYERS.register
class KerasLayer(Layer):
    """Any `keras.layers` class by name (`layer`) with its constructor arguments (`config`)."""

    name = "keras"
    Params = KerasLayerParams
    static_shapes = False
    meta_unsupported = ("the meta-learning inner loop runs layers as functions of per-task weights, "
                        "and a Keras layer owns its weights")
    plan_note: ClassVar[str] = ("shapes and parameter counts of `keras` layers come from Keras itself "
                                "(TensorFlow was imported to plan them)")

    def label(self, params) -> str:
        return f"keras.{params.layer}"

    def reads_raw_inputs(self, params) -> bool:
        return params.layer in RAW_INPUTS

    def output_shape(self, params, input_shape, form="keras"):
        return _built(_key(params), tuple(input_shape))[0]

    def weights(self, params, input_shape):
        return list(_built(_key(params), tuple(input_shape))[1])

    def keras(self, params, name):
        try:
            return construct(params, name)
        except LayerShapeError as exc:  # planned first, so only a changed Keras gets here
            raise ValueError(exc.message) from None
