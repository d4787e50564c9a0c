"""polytask.runtime.strategy (choosing strategies, TF_CONFIG checks, who writes) and
polytask.compiler.distribute (batch sizes, precision).

The multi-device and multi-worker behaviour is tested in child processes (see
test_distribute_train.py and test_distribute_variants.py); these tests stay in-process.
"""
from __future__ import annotations

import json

import pytest

from polytask.compiler import distribute as D
from polytask.errors import RunError
from polytask.runtime import strategy as S

TWO_WORKERS = {"cluster": {"worker": ["localhost:2222", "localhost:2223"]}, "task": {"type": "worker", "index": 1}}


@pytest.fixture
def float32_afterwards():
    yield
    D.set_precision("float32")


@pytest.mark.parametrize("value, message", [
    (None, "needs the TF_CONFIG environment variable"),
    ("{not json", "not valid JSON"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), 'no "cluster"'),
    (json.dumps({"cluster": {"worker": ["localhost"]}, "task": {"type": "worker", "index": 0}}), "host:port"),
    (json.dumps({"cluster": {"worker": ["localhost:1"]}}), 'no "task"'),
    (json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "worker", "index": 1}}), "out of range"),
    (json.dumps({"cluster": {"worker": ["localhost:1"]}, "task": {"type": "chief", "index": 0}}), "not a job"),
    (json.dumps({"cluster": {"worker": ["a:1"], "ps": ["b:2"]}, "task": {"type": "worker", "index": 0}}), "parameter-server"),
])
def test_bad_tf_config_is_a_clear_error(monkeypatch, value, message):
    if value is None:
        monkeypatch.delenv("TF_CONFIG", raising=False)
    else:
        monkeypatch.setenv("TF_CONFIG", value)
    with pytest.raises(RunError) as error:
        S.create_strategy("multi_worker")
    assert message in error.value.message
    assert "TF_CONFIG" in error.value.hint


def test_good_tf_config_is_read(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps(TWO_WORKERS))
    assert S.read_tf_config()["task"] == {"type": "worker", "index": 1}


@pytest.mark.parametrize("name, precision", [("gpu", "float32"), ("auto", "float8")])
def test_unknown_names_are_clear_errors(name, precision):
    with pytest.raises(RunError, match="unknown"):
        S.create_strategy(name, precision)


def test_auto_with_tf_config_joins_the_cluster(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": {"worker": ["localhost"]}}))
    with pytest.raises(RunError, match="host:port"):  # read as a multi-worker run, checked before TF starts
        S.create_strategy("auto")


def test_auto_on_a_cpu_machine_is_one_cpu_device(monkeypatch):
    import tensorflow as tf

    monkeypatch.delenv("TF_CONFIG", raising=False)

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    strategy = S.create_strategy("auto")
    assert isinstance(strategy, tf.distribute.OneDeviceStrategy)
    assert D.num_replicas(strategy) == 1
    assert S.is_chief(strategy)
    assert S.worker_write_dir(strategy, "/some/run") == "/some/run"


def test_batch_sizes_are_global():
    strategy = S.create_strategy("one_device")
    assert D.global_batch_size(strategy, global_batch=32) == 32
    assert D.global_batch_size(strategy, per_replica=8) == 8
    with pytest.raises(ValueError):
        D.global_batch_size(strategy, global_batch=8, per_replica=8)


def test_batch_that_does_not_split_over_replicas_is_a_clear_error():
    class TwoReplicas:
        num_replicas_in_sync = 2

    assert D.global_batch_size(TwoReplicas(), per_replica=16) == 32
    with pytest.raises(RunError, match="does not split evenly") as error:
        D.global_batch_size(TwoReplicas(), global_batch=33)
    assert "GLOBAL" in error.value.hint


def test_mixed_float16_wraps_the_optimizer_in_a_loss_scale_optimizer(float32_afterwards):
    import keras
    import tensorflow as tf

    strategy = S.create_strategy("one_device", "mixed_float16")
    assert keras.mixed_precision.global_policy().name == "mixed_float16"
    with strategy.scope():
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2), keras.layers.Dense(1, dtype="float32")])
        optimizer = D.prepare_optimizer(keras.optimizers.SGD(0.1), model.trainable_variables)
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
    assert model.layers[0].compute_dtype == "float16"
    scale = float(optimizer.dynamic_scale)
    assert float(D.scale_loss(optimizer, tf.constant(2.0))) == pytest.approx(2.0 * scale)

    # A non-finite gradient skips the update and halves the scale instead of poisoning weights.
    before = [v.numpy().copy() for v in model.trainable_variables]
    optimizer.apply_gradients([(tf.fill(v.shape, float("inf")), v) for v in model.trainable_variables])
    assert all((b == v.numpy()).all() for b, v in zip(before, model.trainable_variables))
    assert float(optimizer.dynamic_scale) == pytest.approx(scale / 2)


def test_bfloat16_needs_no_loss_scaling(float32_afterwards):
    import keras

    S.create_strategy("one_device", "mixed_bfloat16")
    assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
    assert not D.needs_loss_scaling()
    sgd = keras.optimizers.SGD(0.1)
    assert D.wrap_optimizer(sgd) is sgd


def test_logical_cpus_after_tensorflow_started_is_a_clear_error():
    import tensorflow as tf

    tf.constant(1.0)  # TensorFlow's devices are initialized from here on
    with pytest.raises(RunError, match="already initialized") as error:
        S.configure_logical_cpus(3)
    assert "POLYTASK_LOGICAL_CPUS=3" in error.value.hint


def test_tpu_without_a_tpu_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TPU_NAME", raising=False)
    with pytest.raises(RunError, match="no TPU found") as error:
        S.create_strategy("tpu")
    assert "TPU_NAME" in error.value.hint


@pytest.mark.parametrize("cluster, task_type, task_id, chief", [
    ({"worker": ["a:1", "b:1"]}, "worker", 0, True),
    ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "chief", 0, True),
    ({"chief": ["c:1"], "worker": ["a:1", "b:1"]}, "worker", 0, False),
])
def test_only_the_chief_writes_to_the_run_directory(tmp_path, cluster, task_type, task_id, chief):
    import tensorflow as tf

    class ClusterStrategy:  # what MultiWorkerMirroredStrategy exposes about its place in the cluster
        cluster_resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)

    strategy = ClusterStrategy()
    assert S.is_chief(strategy) is chief
    where = S.worker_write_dir(strategy, str(tmp_path / "run"))
    if chief:
        assert where == str(tmp_path / "run")
    else:
        assert not where.startswith(str(tmp_path)) and f"{task_type}{task_id}" in where
