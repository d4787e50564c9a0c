"""The generic loop: NaN/Inf stops naming task and step and keeps the last good checkpoint;
early stopping; masked losses; pooled sharing with a task descriptor; sampling rates."""
from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf

from multitask_support import load_program, spec_dict, write_csv, write_spec
from polytask.errors import RunError
from polytask.runtime.loop import EarlyStoppingSettings, LoopSettings, fit


class ScriptedProgram:
    """A minimal Program whose per-task losses follow a script (to drive the loop exactly)."""

    plan = None

    def __init__(self, losses_at, validation=lambda step: 1.0):
        self.strategy = tf.distribute.get_strategy()
        self.step = tf.Variable(0, dtype=tf.int64)
        self.weight = tf.Variable(1.0)
        self.losses_at, self.validation = losses_at, validation

    def checkpoint_items(self):
        return {"step_copy": self.step, "weight": self.weight}

    def train_step(self):
        self.step.assign_add(1)
        self.weight.assign(float(self.step.numpy()))
        a, b = self.losses_at(int(self.step.numpy()))
        return {"loss": a + b, "loss/first": a, "loss/second": b}

    def evaluate(self, split):
        return {"loss": self.validation(int(self.step.numpy()))}

    def export(self, directory):
        tf.saved_model.save(tf.Module(), directory)


def test_nan_loss_names_the_task_and_step_and_keeps_the_last_good_checkpoint(tmp_path):
    program = ScriptedProgram(lambda step: (1.0, float("nan") if step >= 25 else 1.0))
    with pytest.raises(RunError) as info:
        fit(program, tmp_path, LoopSettings(steps=50, checkpoint_every=10, eval_every=100, log_every=5, quiet=True))
    message = str(info.value)
    assert "task 'second'" in message and "nan" in message and "step 25" in message and "step 20" in message
    manager_state = (tmp_path / "checkpoints" / "checkpoint").read_text()
    assert 'model_checkpoint_path: "ckpt-20"' in manager_state
    assert not (tmp_path / "report.json").exists()
    reader = tf.train.load_checkpoint(str(tmp_path / "checkpoints"))
    assert reader.get_tensor("weight/.ATTRIBUTES/VARIABLE_VALUE") == 20.0


def test_early_stopping_stops_after_patience_evaluations_without_improvement(tmp_path):
    program = ScriptedProgram(lambda step: (1.0, 1.0), validation=lambda step: max(1.0, 10.0 - step / 10))
    # validation loss improves until step 90, then is flat: patience 2 at eval_every 10 stops at step 110.
    report = fit(program, tmp_path, LoopSettings(steps=1000, eval_every=10, checkpoint_every=1000, log_every=10, quiet=True,
                                                 early_stopping=EarlyStoppingSettings(patience=2)))
    assert report["stopped_early"] and report["steps"] == 110
    assert report["early_stopping"]["best_step"] == 90
    # the best validation point's state is what gets evaluated and exported
    assert float(program.weight.numpy()) == 90.0 and report["evaluated_weights"].endswith("(step 90)")


def test_a_damaged_best_checkpoint_after_resume_falls_back_to_the_last_step(tmp_path, capsys):
    validation = lambda step: 10.0 - min(step, 40) / 10  # improves until step 40, then flat
    settings = dict(eval_every=10, checkpoint_every=20, log_every=10, quiet=True,
                    early_stopping=EarlyStoppingSettings(patience=100))
    first = fit(ScriptedProgram(lambda step: (1.0, 1.0), validation), tmp_path, LoopSettings(steps=60, **settings))
    assert first["evaluated_weights"].endswith("(step 40)")
    for data in (tmp_path / "checkpoints" / "best").glob("ckpt-40.data-*"):
        data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    program = ScriptedProgram(lambda step: (1.0, 1.0), validation)
    report = fit(program, tmp_path, LoopSettings(steps=80, **settings), resume=True)
    assert report["steps"] == 80 and report["resumed_from_step"] == 60
    assert report["evaluated_weights"] == "last step" and float(program.weight.numpy()) == 80.0
    err = capsys.readouterr().err
    assert "the best validation checkpoint" in err and "is damaged" in err and "the last step instead" in err
    assert sorted(p.name for p in (tmp_path / "checkpoints" / "best").glob("ckpt-40.*"))  # nothing deleted


def test_inf_from_real_data_names_the_task(tmp_path):
    write_csv(tmp_path / "data.csv")
    lines = (tmp_path / "data.csv").read_text().splitlines()
    lines[3] = ",".join(lines[3].split(",")[:-1] + ["1e30"])
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    program = load_program(write_spec(tmp_path, spec_dict(steps=40, sampling="uniform")))
    with pytest.raises(RunError, match="task 'c' became inf at step"):
        fit(program, tmp_path / "run", LoopSettings(steps=40, eval_every=100, checkpoint_every=100, quiet=True))


def test_missing_labels_are_masked_not_dropped(tmp_path):
    write_csv(tmp_path / "data.csv", missing_b=0.5)
    program = load_program(write_spec(tmp_path, spec_dict()))
    train = program.data.splits["train"]
    a, b = program.tasks.index("a"), program.tasks.index("b")
    assert train.size(b) < train.size(a) and train.dropped[b] == train.size(a) - train.size(b)
    # In the loss itself, a NaN label contributes nothing to its task and nothing to the others.
    x = tf.constant(train.task_inputs(a)[:4])
    labels = np.zeros((4, program.data.label_width), np.float32)
    labels[:, 0] = [1.0, np.nan, 0.0, 1.0]
    task = tf.constant([b, b, b, a], tf.int32)
    outputs = program.net(x, task)
    losses, counts = program.task_losses(outputs, tf.constant(labels), task)
    assert counts.numpy()[b] == 2 and counts.numpy()[a] == 1
    per_example, mask = program.per_example_losses(outputs, tf.constant(labels), task)
    assert np.isfinite(losses.numpy()).all()
    np.testing.assert_allclose(losses.numpy()[b], (per_example.numpy()[0] + per_example.numpy()[2]) / 2, rtol=1e-6)


def test_sampling_rates_are_separate_from_weights(tmp_path):
    from polytask.compiler.multitask.data import sampling_rates
    from polytask.spec.loader import load_spec

    spec = spec_dict()
    spec["tasks"]["a"]["weight"] = 5.0
    spec["training"]["sampling"] = {"temperature": 2.0}
    loaded = load_spec(write_spec(tmp_path, spec))
    rates = sampling_rates(loaded.spec, np.array([100.0, 25.0, 100.0]))
    np.testing.assert_allclose(rates, np.array([10.0, 5.0, 10.0]) / 25.0)
    spec["tasks"]["b"]["sampling_rate"] = 3.0
    loaded = load_spec(write_spec(tmp_path, spec, name="second.yaml"))
    np.testing.assert_allclose(sampling_rates(loaded.spec, np.array([100.0, 25.0, 100.0])), [0.2, 0.6, 0.2])


def test_batches_mix_tasks_at_the_sampling_rates(tmp_path):
    spec = spec_dict(sampling="uniform", batch_size=64)
    program = load_program(write_spec(tmp_path, spec))
    ids = np.concatenate([program.next_batch()[2].numpy() for _ in range(30)])
    shares = np.bincount(ids, minlength=3) / len(ids)
    np.testing.assert_allclose(shares, [1 / 3] * 3, atol=0.05)


@pytest.mark.parametrize("descriptor", ["onehot", "embedding"])
def test_pooled_with_a_task_descriptor_learns_task_dependent_outputs(tmp_path, descriptor):
    """Two regression tasks on the same inputs with opposite targets: only a descriptor can fit both."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 3))
    y = x[:, 0] + 0.5 * x[:, 1]
    lines = ["f0,f1,f2,up,down"] + [f"{r[0]:.5f},{r[1]:.5f},{r[2]:.5f},{t:.5f},{-t:.5f}" for r, t in zip(x, y)]
    (tmp_path / "data.csv").write_text("\n".join(lines) + "\n")
    spec = spec_dict(steps=300, eval_every=100, checkpoint_every=300)
    spec["datasets"]["table"]["features"] = ["f0", "f1", "f2"]
    spec["tasks"] = {"up": {"dataset": "table", "target": "up", "loss": "mse", "metrics": ["r2"]},
                     "down": {"dataset": "table", "target": "down", "loss": "mse", "metrics": ["r2"]}}
    spec["structure"] = {"sharing": "pooled", "descriptor": descriptor,
                         "model": [{"dense": {"units": 16, "activation": "relu"}}]}
    program = load_program(write_spec(tmp_path, spec))
    report = fit(program, tmp_path / "run", LoopSettings(steps=300, eval_every=100, checkpoint_every=300, quiet=True))
    test = report["metrics"]["test"]
    assert test["up/r2"] > 0.8 and test["down/r2"] > 0.8


@pytest.mark.parametrize("weighting", ["uncertainty", "dwa", "gradnorm", "pcgrad", "rlw", ["static", "pcgrad"]])
def test_training_with_each_weighting_lowers_the_loss(tmp_path, weighting):
    names = weighting if isinstance(weighting, list) else [weighting]
    spec = spec_dict(steps=60, log_every=10, eval_every=60, checkpoint_every=60, weighting=names)
    program = load_program(write_spec(tmp_path, spec))
    trunk_before = [v.numpy().copy() for v in program.net.shared_variables()]
    first = program.train_step()
    for _ in range(59):
        last = program.train_step()
    assert np.isfinite(last["loss"])
    for task in ("a", "b", "c"):
        assert last[f"loss/{task}"] < first[f"loss/{task}"], task
    if names != ["pcgrad"]:
        assert {f"weight/{t}" for t in "abc"} <= set(last)
    for before, variable in zip(trunk_before, program.net.shared_variables()):  # the shared trunk trained too
        assert np.abs(variable.numpy() - before).max() > 1e-3


def test_a_nan_before_any_checkpoint_does_not_speak_of_one(tmp_path):
    program = ScriptedProgram(lambda step: (1.0, float("nan")))
    with pytest.raises(RunError) as info:
        fit(program, tmp_path, LoopSettings(steps=50, checkpoint_every=10, eval_every=100, quiet=True))
    assert "no checkpoint was written yet" in info.value.message
    assert "last good checkpoint" not in info.value.hint and "--resume restarts" not in info.value.hint
    assert "task 'second'" in info.value.hint  # "that task" names the task


def test_after_a_nan_the_hint_offers_exporting_the_kept_checkpoint_and_that_works(tmp_path):
    program = ScriptedProgram(lambda step: (1.0, float("nan") if step >= 25 else 1.0))
    settings = dict(checkpoint_every=10, eval_every=100, log_every=5, quiet=True)
    with pytest.raises(RunError) as info:
        fit(program, tmp_path, LoopSettings(steps=50, **settings))
    assert f"--resume --steps 20, then polytask evaluate/predict {tmp_path}" in info.value.hint
    # Following it: resume to the kept step trains nothing and exports the step-20 weights.
    again = ScriptedProgram(lambda step: (1.0, float("nan") if step >= 25 else 1.0))
    report = fit(again, tmp_path, LoopSettings(steps=20, **settings), resume=True)
    assert report["steps"] == 20 and float(again.weight.numpy()) == 20.0
    assert (tmp_path / "saved_model").is_dir()
