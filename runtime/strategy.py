"""Where a program runs: tf.distribute strategies, mixed precision and the helpers a
distribution-correct training loop needs.

Every polytask program is built and run under a strategy returned by `create_strategy`,
even on one CPU, so the same code scales from a laptop to a cluster without edits:

    strategy = create_strategy(spec.runtime.strategy, spec.runtime.precision)
    with strategy.scope():
        model = ...                                 # variables are created here
        optimizer = prepare_optimizer(keras.optimizers.Adam(), model.trainable_variables)
    batches = distribute_dataset(strategy, dataset)  # dataset yields GLOBAL batches

    @tf.function
    def train_step(batch):
        def replica_step(batch):
            with tf.GradientTape() as tape:
                per_example = loss_fn(batch)
                loss = average_loss(per_example, global_batch)
                scaled = scale_loss(optimizer, loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        per_replica = strategy.run(replica_step, args=(batch,))
        return strategy.reduce("SUM", per_replica, axis=None)

Conventions, shared by the compiler and the runtime:

- Batch sizes in a spec are GLOBAL (summed over every replica on every worker). The
  dataset is batched with the global size; `strategy.experimental_distribute_dataset`
  splits each global batch into one slice per replica. Per-replica losses are divided by
  the global batch size (`average_loss`), so summing them over replicas -- which the
  Keras optimizer does to gradients -- gives the same update as one device.
- Only the chief writes run artefacts (`is_chief`). Checkpoint saving may involve
  collectives, so every worker calls `save`; non-chief workers save into a throwaway
  directory (`worker_write_dir`).
- Every worker builds the same pipeline from the same seed, so every replica sees the same
  global data order; `distribute_dataset` shards by data, not by file.

TensorFlow is imported inside functions: importing this module is cheap.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator, Optional

from polytask.errors import RunError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

#: Environment variable: split the host CPU into this many logical devices before
#: TensorFlow starts, so `mirrored` has several replicas on a machine without GPUs.
LOGICAL_CPUS_ENV = "POLYTASK_LOGICAL_CPUS"


# --------------------------------------------------------------------------- strategies


def create_strategy(name: str = "auto", precision: str = "float32"):
    """Return the `tf.distribute.Strategy` called `name` and set the Keras dtype policy.

    Args:
        name: one of
            - ``auto``: `multi_worker` when ``TF_CONFIG`` is set (so a worker launched
              without ``--strategy`` joins its cluster instead of training alone into the
              shared run directory); else `MirroredStrategy` over all local GPUs when there
              are several, `OneDeviceStrategy` on the GPU when there is one, else on ``/cpu:0``;
            - ``one_device``: `OneDeviceStrategy` on the first GPU, else the CPU;
            - ``mirrored``: `MirroredStrategy` over all local GPUs, or over all logical
              CPUs when there is no GPU (see `configure_logical_cpus`);
            - ``multi_worker``: `MultiWorkerMirroredStrategy` from the ``TF_CONFIG``
              environment variable (one process per worker; see docs/distributed.md);
            - ``tpu``: `TPUStrategy` from `TPUClusterResolver` (``TPU_NAME`` or the local TPU).
        precision: ``float32``, ``mixed_float16`` (GPUs; needs loss scaling, see
            `wrap_optimizer`) or ``mixed_bfloat16`` (TPUs and recent CPUs).

    Call it before any other TensorFlow work in the process: multi-worker collectives
    and logical CPU devices can only be configured before TensorFlow initializes.

    Raises:
        RunError: for an unknown name, a missing or invalid ``TF_CONFIG``, no TPU, or a
            TensorFlow runtime that is already initialized.
    """
    if name not in STRATEGIES:
        raise RunError(f"unknown strategy {name!r}", hint=f"use one of: {', '.join(STRATEGIES)}")
    if precision not in PRECISIONS:
        raise RunError(f"unknown precision {precision!r}", hint=f"use one of: {', '.join(PRECISIONS)}")
    if name == "auto" and os.environ.get("TF_CONFIG"):
        name = "multi_worker"
    if name == "multi_worker":
        read_tf_config()  # fail fast, before the seconds it takes to import TensorFlow
    set_precision(precision)
    logical = os.environ.get(LOGICAL_CPUS_ENV)
    if logical:
        try:
            count = int(logical)
        except ValueError:
            raise RunError(f"{LOGICAL_CPUS_ENV}={logical!r} is not a whole number",
                           hint=f"e.g. {LOGICAL_CPUS_ENV}=2") from None
        configure_logical_cpus(count)
    return _BUILDERS[name]()


def _auto():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([d.name for d in gpus])
    return _one_device()


def _one_device():
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.OneDeviceStrategy(gpus[0].name if gpus else "/cpu:0")


def _mirrored():
    import tensorflow as tf

    devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return tf.distribute.MirroredStrategy([d.name for d in devices])


def _multi_worker():
    import tensorflow as tf

    config = read_tf_config()
    try:
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise RunError(
            f"could not start the multi-worker strategy: {exc}",
            hint="create the strategy first thing in the process, before any other "
            "TensorFlow work; check that TF_CONFIG addresses are host:port pairs that "
            f"every worker can reach (this is {config['task']['type']} "
            f"{config['task']['index']})",
        ) from None


def _tpu():
    import tensorflow as tf

    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=os.environ.get("TPU_NAME", ""))
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as exc:
        raise RunError(
            f"no TPU found: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
            hint="run on a TPU VM, or set TPU_NAME to the TPU's name or grpc:// address; "
            "use --strategy auto on CPUs and GPUs",
        ) from None
    return tf.distribute.TPUStrategy(resolver)


_BUILDERS = {
    "auto": _auto,
    "one_device": _one_device,
    "mirrored": _mirrored,
    "multi_worker": _multi_worker,
    "tpu": _tpu,
}


def read_tf_config() -> dict:
    """Parse and check ``TF_CONFIG`` for a multi-worker run; return it as a dict.

    ``TF_CONFIG`` is JSON: ``{"cluster": {"worker": ["host:port", ...]},
    "task": {"type": "worker", "index": 0}}``; the same cluster on every worker, a
    different task on each. An optional ``chief`` job holds one address.
    """
    hint = ('set TF_CONFIG on every worker, e.g. TF_CONFIG=\'{"cluster": {"worker": '
            '["localhost:12345", "localhost:12346"]}, "task": {"type": "worker", "index": 0}}\' '
            "(index 1 on the second worker); see docs/distributed.md")
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        raise RunError("--strategy multi_worker needs the TF_CONFIG environment variable", hint=hint)
    try:
        config = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise RunError(f"TF_CONFIG is not valid JSON: {exc}", hint=hint) from None
    if not isinstance(config, dict) or not isinstance(config.get("cluster"), dict):
        raise RunError('TF_CONFIG has no "cluster" object', hint=hint)
    cluster, task = config["cluster"], config.get("task")
    for job, addresses in cluster.items():
        if job not in ("worker", "chief", "evaluator", "ps"):
            raise RunError(f"TF_CONFIG cluster has an unknown job {job!r}", hint=hint)
        if not isinstance(addresses, list) or not addresses or not all(
            isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses
        ):
            raise RunError(f"TF_CONFIG cluster job {job!r} must be a non-empty list of 'host:port' strings",
                           hint=hint)
    if "worker" not in cluster and "chief" not in cluster:
        raise RunError('TF_CONFIG cluster has no "worker" job', hint=hint)
    if "ps" in cluster:
        raise RunError("TF_CONFIG has a 'ps' job: parameter-server training is not supported",
                       hint="list only 'worker' (and optionally one 'chief') jobs in TF_CONFIG")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise RunError('TF_CONFIG has no "task": {"type": ..., "index": ...}', hint=hint)
    if task["type"] not in cluster:
        raise RunError(f"TF_CONFIG task type {task['type']!r} is not a job in the cluster", hint=hint)
    if not isinstance(task["index"], int) or not 0 <= task["index"] < len(cluster[task["type"]]):
        raise RunError(
            f"TF_CONFIG task index {task['index']!r} is out of range for job {task['type']!r} "
            f"({len(cluster[task['type']])} address(es))", hint=hint)
    return config


# --------------------------------------------------------------------------- devices


def configure_logical_cpus(count: int) -> None:
    """Split the host CPU into `count` logical devices (for `mirrored` on machines without GPUs).

    Must run before TensorFlow initializes its devices (before the first tensor or
    strategy is made); tests therefore do it in a fresh subprocess. Calling it again with
    the count already in place is a no-op.
    """
    import tensorflow as tf

    if count < 1:
        raise RunError(f"need at least one logical CPU, got {count}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    current = tf.config.get_logical_device_configuration(cpu)
    if current is not None and len(current) == count:
        return
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise RunError(
            f"cannot split the CPU into {count} logical devices: TensorFlow is already initialized",
            hint=f"set {LOGICAL_CPUS_ENV}={count} in the environment, or call "
            "configure_logical_cpus before any other TensorFlow work",
        ) from None


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


# --------------------------------------------------------------------------- batches and losses


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


def per_replica_batch_size(strategy, global_batch: int) -> int:
    """The slice of a global batch each replica sees."""
    return global_batch_size(strategy, global_batch=global_batch) // num_replicas(strategy)


def average_loss(per_example_loss, global_batch: int, sample_weight=None):
    """A replica's share of the mean loss: sum of its per-example losses over the GLOBAL batch.

    Summed over replicas this is the mean over the global batch. Under mixed precision the
    loss is computed in float32.
    """
    import tensorflow as tf

    per_example_loss = tf.cast(per_example_loss, tf.float32)
    if sample_weight is not None:
        sample_weight = tf.cast(sample_weight, tf.float32)
    return tf.nn.compute_average_loss(per_example_loss, sample_weight=sample_weight,
                                      global_batch_size=global_batch)


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


# --------------------------------------------------------------------------- who writes


def task_type_and_id(strategy=None) -> tuple[Optional[str], int]:
    """This process's (task type, index) in a multi-worker cluster; (None, 0) otherwise."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy is not None else None
    if resolver is not None and resolver.task_type is not None:
        return resolver.task_type, int(resolver.task_id or 0)
    return None, 0


def is_chief(strategy=None) -> bool:
    """True in the one process that writes run artefacts (checkpoints, logs, reports, exports).

    That is: any single-process strategy; in a cluster, the ``chief`` task, or worker 0
    when the cluster has no ``chief`` job.
    """
    task_type, task_id = task_type_and_id(strategy)
    if task_type is None:
        return True
    if task_type == "chief":
        return True
    resolver = strategy.cluster_resolver
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


_WORKER_DIRS: list[str] = []


def worker_write_dir(strategy, directory: str) -> str:
    """Where this process writes what the chief writes to `directory`.

    The chief gets `directory` itself. Other workers get a private temporary directory,
    removed when the process exits: they must still run collective saves (checkpoints of
    mirrored variables) but their files are never read.
    """
    if is_chief(strategy):
        return directory
    task_type, task_id = task_type_and_id(strategy)
    path = tempfile.mkdtemp(prefix=f"polytask-{task_type}{task_id}-")
    if not _WORKER_DIRS:
        import atexit

        atexit.register(lambda: [shutil.rmtree(p, ignore_errors=True) for p in _WORKER_DIRS])
    _WORKER_DIRS.append(path)
    return path


@contextlib.contextmanager
def worker_failures_as_run_errors(strategy) -> Iterator[None]:
    """Turn "a peer worker died" TensorFlow errors into a `RunError` that says how to recover.

    When one worker of a multi-worker run dies, the collectives on the others fail
    (usually `UnavailableError`, within seconds). Recovery is: restart every worker with
    the same command plus ``--resume``; they continue from the chief's last checkpoint.
    Single-process strategies are unaffected.
    """
    import tensorflow as tf

    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError,
            tf.errors.CancelledError) as exc:
        if task_type_and_id(strategy)[0] is None:
            raise
        task_type, task_id = task_type_and_id(strategy)
        detail = (exc.message or type(exc).__name__).strip().splitlines()[0]
        raise RunError(
            f"{task_type} {task_id} lost contact with another worker ({type(exc).__name__}: {detail})",
            hint="a worker stopped or became unreachable; restart EVERY worker with the same "
            "command plus --resume to continue from the chief's last checkpoint",
        ) from None


def describe(strategy) -> dict[str, Any]:
    """A small, JSON-ready summary for logs and report.json."""
    import keras

    task_type, task_id = task_type_and_id(strategy)
    return {
        "strategy": type(strategy).__name__,
        "replicas": num_replicas(strategy),
        "task": None if task_type is None else f"{task_type}:{task_id}",
        "chief": is_chief(strategy),
        "precision": keras.mixed_precision.global_policy().name,
    }
