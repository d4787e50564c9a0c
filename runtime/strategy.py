"""Where a program runs: choosing and creating tf.distribute strategies, and who writes.

Every polytask program is built and run under a strategy returned by `create_strategy`,
even on one CPU, so the same code scales from a laptop to a cluster without edits. The
runtime creates the strategy and hands it to the compiler; the tensor helpers a program
uses under it (precision and loss scaling, global batch sizes, dataset distribution) live
one layer down, in `polytask.compiler.distribute`:

    from polytask.compiler.distribute import distribute_dataset, prepare_optimizer, scale_loss

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
                loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
                scaled = scale_loss(optimizer, loss)
            grads = tape.gradient(scaled, model.trainable_variables)
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss
        per_replica = strategy.run(replica_step, args=(batch,))
        return strategy.reduce("SUM", per_replica, axis=None)

Conventions (batch sizes and data order: see `polytask.compiler.distribute`):

- Only the chief writes run artefacts (`is_chief`). Checkpoint saving may involve
  collectives, so every worker calls `save`; non-chief workers save into a throwaway
  directory (`worker_write_dir`).

TensorFlow is imported inside functions: importing this module is cheap.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator, Optional

from polytask.compiler.distribute import PRECISIONS, num_replicas, set_precision
from polytask.errors import RunError

STRATEGIES = ("auto", "one_device", "mirrored", "multi_worker", "tpu")

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
            `polytask.compiler.distribute.prepare_optimizer`) or ``mixed_bfloat16`` (TPUs
            and recent CPUs).

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
