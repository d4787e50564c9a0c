"""Layer kinds: one module per kind, each owning everything about that layer.

A layer descriptor declares, in one file:
- `name` and `Params` (its pydantic params model: the `{dense: {units: 64}}` of the spec);
- TensorFlow-free plan facts: `output_shape` (raising `LayerShapeError` when the input
  cannot take it) and `weights` (every weight's role, shape, initializer; counts follow
  Keras' `count_params`, batch-norm moving statistics included);
- its TensorFlow forms, importing TensorFlow only when called: `keras` (a Keras layer, for
  pooled models and trunks), `stacked` (the per-task stacked-head form; layers that have it
  set `stackable = True`) and `functional` (parameters in, outputs out, with a leading
  task axis, for meta-learning; layers that lack it say why in `meta_unsupported`).

`infer_layers` is the one shape inference of the project: `polytask check`, `polytask
plan`, the Keras models and the meta-learning architecture all use it. Registering:

    @LAYERS.register
    class Dense(Layer):
        name = "dense"
        Params = DenseParams
        ...
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import Any, ClassVar, Optional

from polytask.errors import PolytaskError
from polytask.spec.registry import LAYERS, Concept


class LayerShapeError(ValueError):
    """A layer cannot take an input of this shape; `hint` says how to fix the spec."""

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class Weight:
    """One weight tensor of a layer: role (`kernel`, `bias`, ...), shape, initializer, trained or not."""

    role: str
    shape: tuple[int, ...]
    initializer: str = "glorot_uniform"  # glorot_uniform | zeros | ones
    trainable: bool = True

    @property
    def size(self) -> int:
        return int(prod(self.shape)) if self.shape else 1


class Layer(Concept):
    """Base of every layer descriptor; the defaults describe a shape-preserving, weightless layer."""

    shorthand: ClassVar[Optional[str]] = None  # `- {activation: relu}` sets this field to `relu`
    stackable: ClassVar[bool] = False  # has a `stacked` form (may appear in a per-task head)
    meta_unsupported: ClassVar[Optional[str]] = None  # why there is no `functional` form
    batch_statistics: ClassVar[bool] = False  # normalises with batch statistics (meta: support-set statistics)
    xla_slow_on_cpu: ClassVar[bool] = False  # XLA runs it slower than TensorFlow's own CPU kernels
    # False: `output_shape`/`weights` import TensorFlow (Keras computes them), so `polytask
    # check` does not know the shapes from this layer on; `plan_note` says so in `polytask plan`.
    static_shapes: ClassVar[bool] = True
    plan_note: ClassVar[Optional[str]] = None

    # ---- plan facts (no TensorFlow)
    def label(self, params) -> str:
        """How `polytask plan` names this layer (`dense`, `keras.LSTM`)."""
        return self.name

    def output_shape(self, params, input_shape: tuple, form: str = "keras") -> tuple:
        return tuple(input_shape)

    def reads_raw_inputs(self, params) -> bool:
        """True when, as the first layer, it needs the data as given (token ids), so the network's
        inputs are not standardised with the training split's mean and standard deviation."""
        return False

    def weights(self, params, input_shape: tuple) -> list[Weight]:
        return []

    def files(self, params) -> dict[str, str]:
        """Files the layer reads, by parameter name, as written in the spec (relative paths resolve
        against the spec's folder); `polytask check` reports those that are not there."""
        return {}

    def count_params(self, params, input_shape: tuple) -> int:
        return sum(w.size for w in self.weights(params, input_shape))

    def supports(self, form: str) -> Optional[str]:
        """None when the layer has this form, else the reason it does not."""
        if form == "stacked" and not self.stackable:
            return "it cannot be stacked per task"
        if form == "functional" and self.meta_unsupported:
            return self.meta_unsupported
        return None

    # ---- TensorFlow forms (import TensorFlow inside)
    def keras(self, params, name: str):
        raise NotImplementedError(f"layer {self.name} has no Keras form")

    def stacked(self, head, params, width: int, prefix: str):
        """Create this layer's weights for `head.count` tasks on `head` (a StackedHead).

        Returns `(apply, out_width)`, `apply(h, index, training)` applying row b's own task
        `index[b]`. The default is a weightless per-row op built from the Keras form.
        """
        layer = self.keras(params, prefix)
        setattr(head, f"layer_{prefix}", layer)  # tracked by Keras (e.g. dropout's seed state)
        return (lambda h, index, training: layer(h, training=training)), width

    def functional(self, params, weights: dict, x, context: "FunctionalContext"):
        """Apply the layer to `x` with per-task `weights` (role -> tensor with a leading task axis)."""
        raise NotImplementedError(f"layer {self.name} has no functional form")


@dataclass
class FunctionalContext:
    """What a layer's functional form needs to know about the batch it is applied to.

    `folded`: x is laid out [B, H, W, T, C] (spatial, tasks folded next to the channels),
    else [T, B, ...]. `stats_count`: batch statistics from the first n examples only.
    `compute`: casts a tensor to the compute dtype (mixed precision) for matmuls and convs.
    """

    folded: bool
    output_shape: tuple
    stats_count: Optional[int] = None
    compute: Any = None


@dataclass(frozen=True)
class LayerPlan:
    """One layer resolved against its input: shapes and weights (per example, no batch axis)."""

    index: int
    kind: str
    params: Any
    input_shape: tuple
    output_shape: tuple
    weights: tuple[Weight, ...] = ()
    inferred: bool = False  # the output layer the compiler adds

    @property
    def descriptor(self) -> Layer:
        return LAYERS.get(self.kind)

    @property
    def param_count(self) -> int:
        return sum(w.size for w in self.weights)


def output_layer(units: int):
    """The spec form of the inferred output layer: a linear dense layer with `units` units."""
    from polytask.spec.layers import Layer as LayerSpec

    return LayerSpec.model_validate({"dense": {"units": int(units)}})


class LayerStackError(PolytaskError):
    """A layer list does not fit its input (a user error: the CLI prints it without a traceback);
    `index` is the layer's position in its list, `layers` the list's spec path."""

    def __init__(self, message: str, hint: Optional[str], index: int, layers: str):
        super().__init__(message, hint=hint)
        self.index = index
        self.layers = layers


def infer_layers(layers, input_shape: tuple, where: str = "model", form: str = "keras",
                 inferred_from: Optional[int] = None, with_weights: bool = True) -> list[LayerPlan]:
    """Resolve `layers` (spec layer models) against `input_shape` for one form.

    Layers at and after position `inferred_from` are marked as added by the compiler;
    `with_weights=False` skips the weights (shapes only, as `polytask check` needs).
    Raises LayerStackError naming the layer (`where[index]`), what does not fit and how to fix it.
    """
    plans, shape = [], tuple(int(d) for d in input_shape)
    for index, layer in enumerate(layers):
        descriptor = LAYERS.get(layer.kind)
        inferred = inferred_from is not None and index >= inferred_from
        label = f"the output layer the compiler adds after {where}" if inferred else f"{where}[{index}]"
        require_form(descriptor, layer.kind, label, form, index, where)
        try:
            new_shape = tuple(descriptor.output_shape(layer.params, shape, form))
            weights = tuple(descriptor.weights(layer.params, shape)) if with_weights else ()
        except LayerShapeError as exc:
            raise LayerStackError(
                f"{label} ({layer.kind}) does not fit its input of shape {list(shape)}: {exc.message}",
                exc.hint or "check the layer order (e.g. add `flatten` before dense layers on images)",
                index, where) from None
        except Exception as exc:
            if descriptor.origin.builtin:
                raise
            raise LayerStackError(  # a plugin's bug: say whose, at the layer that uses it
                f"{label} ({layer.kind}): {descriptor.origin.describe()} failed on an input of shape {list(shape)}: "
                f"{type(exc).__name__}: {exc}", "report it to the plugin's authors, or use another layer",
                index, where) from None
        plans.append(LayerPlan(index, layer.kind, layer.params, shape, new_shape, weights, inferred=inferred))
        shape = new_shape
    return plans


def require_form(descriptor, kind: str, label: str, form: str, index: int, where: str) -> None:
    """LayerStackError when the layer has no `form` (a Keras layer in a meta-learning model)."""
    missing = descriptor.supports(form)
    if missing is not None:
        usable = [n for n, d in LAYERS.items() if d.supports(form) is None]
        raise LayerStackError(f"{label} ({kind}): {FORM_WORDS[form]} take no `{kind}` "
                              f"layer: {missing}", f"use {', '.join(usable)}", index, where)


def static_prefix(layers) -> int:
    """How many leading layers have shapes computable without TensorFlow (`polytask check`)."""
    return next((i for i, layer in enumerate(layers) if not LAYERS.get(layer.kind).static_shapes), len(layers))


FORM_WORDS = {"keras": "models", "stacked": "per-task heads", "functional": "meta-learning models"}


def flat_size(shape: tuple) -> int:
    return int(prod(shape)) if shape else 1


def final_shape(plans: list[LayerPlan], input_shape: tuple) -> tuple:
    return plans[-1].output_shape if plans else tuple(input_shape)


def require_keras(what: str):
    """The keras module, or a PolytaskError saying which extra to install (planning a Keras layer)."""
    try:
        import keras
    except ImportError:
        raise PolytaskError(f"planning {what} needs TensorFlow and Keras, which are not installed",
                            hint="pip install 'polytask[tensorflow]' (or polytask[cpu], polytask[cuda])") from None
    return keras


def tf_activation(name: str):
    """The TensorFlow function of a spec activation name (functional and stacked forms)."""
    import tensorflow as tf

    return {
        "linear": lambda x: x, "relu": tf.nn.relu, "gelu": tf.nn.gelu, "tanh": tf.tanh, "sigmoid": tf.sigmoid,
        "elu": tf.nn.elu, "selu": tf.nn.selu, "swish": tf.nn.silu, "softplus": tf.nn.softplus,
    }[name]


def per_task(value, folded: bool):
    """Per-task [T, C] scale/offset broadcast against [B, H, W, T, C] (folded) or [T, B, C]."""
    return value[None, None, None] if folded else value[:, None, :]
