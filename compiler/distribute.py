"""Tensor helpers a compiled program needs to be correct under any strategy and precision.

A program (see `polytask.compiler.program`) is built and run under a `tf.distribute`
strategy it is handed; it never chooses or creates one (that is the runtime's job:
`polytask.runtime.strategy.create_strategy`). What a program does need, and what this
module holds, is the arithmetic that makes one training step give the same update on one
device, many replicas or many workers, in float32 or mixed precision:

- precision and loss scaling: `set_precision`, `needs_loss_scaling`, `wrap_optimizer`,
  `prepare_optimizer`, `scale_loss`;
- batch arithmetic: `num_replicas`, `global_batch_size`;
- input distribution: `distribute_dataset`.

Conventions, shared by the compiler and the runtime:

- Batch sizes in a spec are GLOBAL (summed over every replica on every worker). The
  dataset is batched with the global size; `distribute_dataset` splits each global batch
  into one slice per replica. Per-replica losses are divided by the global batch size
  (`tf.nn.compute_average_loss(..., global_batch_size=...)`), so summing them over
  replicas -- which the Keras optimizer does to gradients -- gives the same update as
  one device.
- Every worker builds the same pipeline from the same seed, so every replica sees the same
  global data order; `distribute_dataset` shards by data, not by file.
- Under ``mixed_float16`` the optimizer is a `LossScaleOptimizer` (`prepare_optimizer`)
  and gradients are taken of `scale_loss(optimizer, loss)`.

This module sits below the runtime and imports nothing from it. TensorFlow and Keras are
imported inside functions: importing this module is cheap.
"""
from __future__ import annotations

from typing import Optional

from polytask.errors import RunError

PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


# --------------------------------------------------------------------------- precision


def set_precision(precision: str = "float32") -> None:
    """Set the global Keras dtype policy: layers created afterwards compute in this precision.

    Under ``mixed_*`` layers keep float32 variables and compute in float16/bfloat16. The
    output layer (and the loss) should stay float32 -- build it with ``dtype="float32"``
    -- so softmax and losses are numerically safe.
    """
    import keras

    if precision not in PRECISIONS:
        raise RunError(f"unknown precision {precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
    keras.mixed_precision.set_global_policy(precision)


def needs_loss_scaling(precision: Optional[str] = None) -> bool:
    """True for float16 compute, whose small gradients underflow without loss scaling."""
    if precision is None:
        import keras

        precision = keras.mixed_precision.global_policy().name
    return precision == "mixed_float16"


def wrap_optimizer(optimizer, precision: Optional[str] = None):
    """Wrap `optimizer` in Keras 3's dynamic `LossScaleOptimizer` when the precision needs it.

    Create it under `strategy.scope()`. In a custom loop, multiply the loss with
    `scale_loss(optimizer, loss)` before taking gradients; the wrapper's
    `apply_gradients` unscales them, skips the step when a gradient is not finite and
    adapts the scale. For other precisions the optimizer is returned unchanged.
    """
    import keras

    if needs_loss_scaling(precision) and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
        return keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer


def prepare_optimizer(optimizer, variables, precision: Optional[str] = None):
    """Wrap `optimizer` for the precision (`wrap_optimizer`) and build its slots for `variables`.

    Call it under `strategy.scope()`, after the model is built and before the first
    step. Keras 3 otherwise creates optimizer slots lazily inside the first `strategy.run`,
    which fails under `MirroredStrategy` ("You must feed a value for placeholder tensor").
    """
    optimizer = wrap_optimizer(optimizer, precision)
    optimizer.build(list(variables))
    return optimizer


def scale_loss(optimizer, loss):
    """The loss to differentiate: scaled by the optimizer's loss scale, if it has one."""
    if hasattr(optimizer, "scale_loss"):
        return optimizer.scale_loss(loss)
    return loss


# --------------------------------------------------------------------------- batches


def num_replicas(strategy) -> int:
    """Replicas that take part in every step (all devices on all workers)."""
    return int(strategy.num_replicas_in_sync)


def global_batch_size(strategy, *, global_batch: Optional[int] = None, per_replica: Optional[int] = None) -> int:
    """The global batch size, given either the global or the per-replica size (not both).

    A spec's ``training.batch_size`` is global: pass ``global_batch=spec.training.batch_size``
    to check that it divides evenly over the replicas.
    """
    if (global_batch is None) == (per_replica is None):
        raise ValueError("pass exactly one of global_batch= or per_replica=")
    replicas = num_replicas(strategy)
    if per_replica is not None:
        return per_replica * replicas
    if global_batch % replicas:
        raise RunError(
            f"the batch size {global_batch} does not split evenly over {replicas} replicas",
            hint=f"training.batch_size is the GLOBAL batch size; use a multiple of {replicas}",
        )
    return global_batch


def distribute_dataset(strategy, dataset):
    """Distribute a dataset of GLOBAL batches: each replica gets its slice of every batch.

    Sharding is by data, so every worker must build the same pipeline from the same seed
    (polytask pipelines do); file-based sharding would silently change the data order
    with the number of workers.
    """
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return strategy.experimental_distribute_dataset(dataset.with_options(options))
