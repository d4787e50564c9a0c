"""A functional model for meta-learning: parameters in, predictions out, for many tasks at once.

Inner-loop adaptation needs the model as a pure function `f(params, x)` whose parameters
can be replaced by adapted tensors (theta' = theta - alpha * grad). Here every parameter
carries a leading *task axis* T, so one call evaluates T tasks, each with its own
parameters, as one batch of ordinary TensorFlow ops:

- dense: a batched matmul [T, B, I] x [T, I, O];
- conv2d: one grouped convolution -- the tasks are folded into the channel axis,
  activations are laid out [B, H, W, T*C] and the kernel [k, k, C, T*O], so each task's
  channels only see that task's filters;
- max_pool2d: per channel, so the folded layout pools every task at once;
- batch_norm: statistics per task and channel, always from the task's own examples (no
  running averages): by default over the whole batch passed in; with `stats_count=n` over
  the first n examples only, so a query set can be normalised with its support set's
  statistics (non-transductive evaluation, see `MetaStructure.transductive_batch_norm`);
- layer_norm: per example, with per-task scale and offset.

Meta-parameters (one copy, no task axis) are broadcast to T copies with `tile_params`;
the gradient of a sum of per-task losses through the broadcast is the meta-gradient, and
the gradient w.r.t. the T copies is each task's own gradient, exactly. Nothing here loops
over tasks, so graph size does not grow with the meta-batch, and everything lowers to XLA.
"""
from __future__ import annotations

from typing import Mapping, Optional

import tensorflow as tf

from polytask.compiler.meta.architecture import Architecture, LayerPlan

_ACTIVATIONS = {
    "linear": lambda x: x,
    "relu": tf.nn.relu,
    "gelu": tf.nn.gelu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
    "elu": tf.nn.elu,
    "selu": tf.nn.selu,
    "swish": tf.nn.silu,
    "softplus": tf.nn.softplus,
}

Params = Mapping[str, tf.Tensor]


def tile_params(params: Params, tasks) -> dict[str, tf.Tensor]:
    """Give each meta-parameter a leading task axis of size `tasks` (one copy per task)."""
    out = {}
    for name, value in params.items():
        if isinstance(tasks, int) and value.shape.is_fully_defined():
            shape = [tasks] + value.shape.as_list()  # static: lets XLA specialise the batched ops
        else:
            shape = tf.concat([[tasks], tf.shape(value)], 0)
        out[name] = tf.broadcast_to(value[None], shape)
    return out


class FunctionalModel:
    """Apply an `Architecture` to a batch of tasks with per-task parameters."""

    def __init__(self, architecture: Architecture):
        self.architecture = architecture
        self.compute_dtype = _compute_dtype()

    @property
    def param_names(self) -> list[str]:
        return [p.name for p in self.architecture.params]

    @property
    def has_batch_norm(self) -> bool:
        return any(layer.kind == "batch_norm" for layer in self.architecture.layers)

    def __call__(self, params: Params, x: tf.Tensor, *, start: int = 0, stop: Optional[int] = None,
                 stats_count: Optional[int] = None) -> tf.Tensor:
        """Layers `start`..`stop-1` on `x` [T, B, *shape]; every param has a leading T axis.

        `stats_count`: batch norm statistics come from the first `stats_count` examples of
        each task's batch only (default: all B). Returns [T, B, *output_shape].
        """
        self._stats_count = stats_count
        layers = self.architecture.layers[start:stop]
        folded = False  # True while x is laid out [B, H, W, T, C] (spatial, tasks folded)
        for layer in layers:
            spatial = len(layer.input_shape) == 3
            if spatial and not folded:
                x = tf.transpose(x, [1, 2, 3, 0, 4])
                folded = True
            x = self._apply(layer, params, x, folded)
            if layer.kind == "flatten":
                folded = False
        if folded:
            x = tf.transpose(x, [3, 0, 1, 2, 4])
        return x

    # ------------------------------------------------------------------ layers

    def _apply(self, layer: LayerPlan, params: Params, x: tf.Tensor, folded: bool) -> tf.Tensor:
        kind, config = layer.kind, layer.config
        if kind == "dense":
            dtype = x.dtype
            kernel = self._compute(params[f"{layer.name}/kernel"])
            x = tf.matmul(self._compute(x), kernel)
            if f"{layer.name}/bias" in params:
                x = x + self._compute(params[f"{layer.name}/bias"])[:, None, :]
            return tf.cast(_ACTIVATIONS[config["activation"]](x), dtype)
        if kind == "conv2d":
            return tf.cast(_ACTIVATIONS[config["activation"]](self._conv(layer, params, x)), x.dtype)
        if kind == "max_pool2d":
            b, h, w, t, c = _dims(x)
            size = config["pool_size"]
            pooled = tf.nn.max_pool2d(tf.reshape(x, [b, h, w, t * c]), size, size, "VALID")
            return tf.reshape(pooled, [b, h // size, w // size, t, c])
        if kind == "batch_norm":
            return self._batch_norm(layer, params, x, folded)
        if kind == "layer_norm":
            gamma, beta = params[f"{layer.name}/gamma"], params[f"{layer.name}/beta"]
            axes = [1, 2, 4] if folded else [-1]
            mean, variance = tf.nn.moments(x, axes=axes, keepdims=True)
            x = (x - mean) * tf.math.rsqrt(variance + config["epsilon"])
            return x * _per_task(gamma, folded) + _per_task(beta, folded)
        if kind == "flatten":
            if folded:
                b, h, w, t, c = _dims(x)
                return tf.reshape(tf.transpose(x, [3, 0, 1, 2, 4]), [t, b, h * w * c])
            shape = tf.shape(x)
            return tf.reshape(x, [shape[0], shape[1], -1])
        if kind == "activation":
            return _ACTIVATIONS[config["function"]](x)
        raise ValueError(f"unsupported layer kind {kind}")

    def _compute(self, value: tf.Tensor) -> tf.Tensor:
        """Mixed precision: dense and conv layers compute in the policy's dtype; all else stays float32."""
        if self.compute_dtype == "float32" or value.dtype != tf.float32:
            return value
        return tf.cast(value, self.compute_dtype)

    def _conv(self, layer: LayerPlan, params: Params, x: tf.Tensor) -> tf.Tensor:
        kernel, bias = self._compute(params[f"{layer.name}/kernel"]), self._compute(params[f"{layer.name}/bias"])
        x = self._compute(x)
        b, h, w, t, c = _dims(x)
        k, filters = layer.config["kernel_size"], layer.config["filters"]
        # [T, k, k, C, O] -> [k, k, C, T*O]: output channel group g belongs to task g.
        grouped = tf.reshape(tf.transpose(kernel, [1, 2, 3, 0, 4]), [k, k, c, t * filters])
        y = tf.nn.conv2d(tf.reshape(x, [b, h, w, t * c]), grouped, layer.config["strides"],
                         layer.config["padding"].upper())
        out_h, out_w = layer.output_shape[0], layer.output_shape[1]
        y = tf.reshape(y, [b, out_h, out_w, t, filters])
        return y + bias[None, None, None, :, :]

    def _batch_norm(self, layer: LayerPlan, params: Params, x: tf.Tensor, folded: bool) -> tf.Tensor:
        gamma, beta = params[f"{layer.name}/gamma"], params[f"{layer.name}/beta"]
        axes = [0, 1, 2] if folded else [1]  # one task's batch (and positions), per channel
        reference = x
        if self._stats_count is not None:
            reference = x[: self._stats_count] if folded else x[:, : self._stats_count]
        mean, variance = tf.nn.moments(reference, axes=axes, keepdims=True)
        x = (x - mean) * tf.math.rsqrt(variance + layer.config["epsilon"])
        return x * _per_task(gamma, folded) + _per_task(beta, folded)


def _compute_dtype() -> str:
    """The Keras policy's compute dtype (set by `--precision`); parameters stay float32.

    float16 would need loss scaling through the inner loop's gradients, which the meta
    algorithms do not do, so it is refused rather than silently underflowing.
    """
    import keras

    from polytask.errors import RunError

    policy = keras.mixed_precision.global_policy()
    if policy.compute_dtype == "float16":
        raise RunError("meta-learning specs do not support --precision mixed_float16",
                       hint="use mixed_bfloat16 (no loss scaling needed) or float32")
    return policy.compute_dtype


def _per_task(value: tf.Tensor, folded: bool) -> tf.Tensor:
    """Per-task [T, C] scale/offset broadcast against [B, H, W, T, C] or [T, B, C]."""
    return value[None, None, None] if folded else value[:, None, :]


def _dims(x: tf.Tensor):
    """Dimensions of a folded activation; static where known (XLA likes static shapes)."""
    dynamic = tf.shape(x)
    return [s if s is not None else dynamic[i] for i, s in enumerate(x.shape.as_list())]


def initial_values(architecture: Architecture, seed: int) -> dict[str, tf.Tensor]:
    """Initial meta-parameters, reproducible from `seed` (Glorot-uniform kernels, zero biases)."""
    values = {}
    for i, spec in enumerate(architecture.params):
        if spec.initializer == "zeros":
            values[spec.name] = tf.zeros(spec.shape)
        elif spec.initializer == "ones":
            values[spec.name] = tf.ones(spec.shape)
        else:
            if len(spec.shape) == 2:
                fan_in, fan_out = spec.shape
            else:  # conv [k, k, C, O]
                receptive = spec.shape[0] * spec.shape[1]
                fan_in, fan_out = receptive * spec.shape[2], receptive * spec.shape[3]
            limit = (6.0 / (fan_in + fan_out)) ** 0.5
            values[spec.name] = tf.random.stateless_uniform(spec.shape, [seed, i], -limit, limit)
    return values
