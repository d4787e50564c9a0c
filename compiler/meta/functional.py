"""A functional model for meta-learning: parameters in, predictions out, for many tasks at once.

Inner-loop adaptation needs the model as a pure function `f(params, x)` whose parameters
can be replaced by adapted tensors (theta' = theta - alpha * grad). Here every parameter
carries a leading *task axis* T, so one call evaluates T tasks, each with its own
parameters, as one batch of ordinary TensorFlow ops. Each layer's `functional` form lives
with its descriptor (`polytask.compiler.layers.<kind>`); this module owns the layout:
activations are [T, B, ...], and spatial ones are *folded* as [B, H, W, T, C] so that a
convolution for all tasks is one grouped convolution (dense: a batched matmul; batch
norm: statistics per task and channel from the task's own examples).

Meta-parameters (one copy, no task axis) are broadcast to T copies with `tile_params`;
the gradient of a sum of per-task losses through the broadcast is the meta-gradient, and
the gradient w.r.t. the T copies is each task's own gradient, exactly. Nothing here loops
over tasks, so graph size does not grow with the meta-batch, and everything lowers to XLA.
"""
from __future__ import annotations

from typing import Mapping, Optional

import tensorflow as tf

from polytask.compiler.layers import FunctionalContext
from polytask.compiler.meta.architecture import Architecture, layer_name

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
        return any(layer.descriptor.batch_statistics for layer in self.architecture.layers)

    def __call__(self, params: Params, x: tf.Tensor, *, start: int = 0, stop: Optional[int] = None,
                 stats_count: Optional[int] = None, step: int = 0) -> tf.Tensor:
        """Layers `start`..`stop-1` on `x` [T, B, *shape]; every param has a leading T axis.

        `stats_count`: batch norm statistics come from the first `stats_count` examples of
        each task's batch only (default: all B). `step`: the inner step, which picks the
        per-step weights (MAML++ per-step batch norm; steps beyond the last set reuse it).
        Returns [T, B, *output_shape].
        """
        architecture = self.architecture
        folded = False  # True while x is laid out [B, H, W, T, C] (spatial, tasks folded)
        for layer in architecture.layers[start:stop]:
            spatial = len(layer.input_shape) == 3
            if spatial and not folded:
                x = tf.transpose(x, [1, 2, 3, 0, 4])
                folded = True
            prefix = layer_name(layer) + "/"
            weights = {name[len(prefix):]: value for name, value in params.items() if name.startswith(prefix)}
            if architecture.per_step(layer):  # [T, steps, ...] -> this step's [T, ...]
                index = min(step, architecture.batch_norm_steps - 1)
                weights = {role: value[:, index] for role, value in weights.items()}
            context = FunctionalContext(folded=folded, output_shape=layer.output_shape, stats_count=stats_count,
                                        compute=self._compute)
            x = layer.descriptor.functional(layer.params, weights, x, context)
            if len(layer.output_shape) != 3:
                folded = False  # the layer left the folded layout (flatten)
        if folded:
            x = tf.transpose(x, [3, 0, 1, 2, 4])
        return x

    def _compute(self, value: tf.Tensor) -> tf.Tensor:
        """Mixed precision: dense and conv layers compute in the policy's dtype; all else stays float32."""
        if self.compute_dtype == "float32" or value.dtype != tf.float32:
            return value
        return tf.cast(value, self.compute_dtype)


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


def dims(x: tf.Tensor):
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
