"""`keras_application` backbones: names checked without TensorFlow, plan counts equal the
model's, weights loaded from a file the test writes, frozen backbones stay frozen, and a
MobileNetV3Small trunk trains (weights: null; nothing is downloaded)."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cli_support import invoke
from multitask_support import load_program
from polytask.compiler.plan import build_plan, format_plan
from polytask.spec.loader import load_spec

SIZE = 32


def _data(folder, rows=64):
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(rows, SIZE, SIZE, 3)).astype(np.float32)
    bright = (np.arange(rows) % 2).astype(np.int64)
    x[bright == 1, :8] += 1.0  # class 1: a bright top band
    np.savez(folder / "images.npz", x=x, label=bright, mean=x.mean(axis=(1, 2, 3)))


def _spec(folder, backbone, steps=2, name="spec.yaml"):
    spec = {"polytask": 1, "name": "backbone", "seed": 0,
            "datasets": {"pics": {"source": "npz", "path": "images.npz", "split": {"train": 0.75, "test": 0.25}}},
            "tasks": {"bright": {"dataset": "pics", "target": "label", "loss": "cross_entropy", "metrics": ["accuracy"]},
                      "mean": {"dataset": "pics", "target": "mean", "loss": "mse"}},
            "structure": {"sharing": "hard", "trunk": [{"keras_application": backbone}],
                          "head": [{"dense": {"units": 8, "activation": "relu"}}]},
            "training": {"steps": steps, "batch_size": 16, "eval_every": steps, "log_every": max(1, steps // 5)}}
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_check_validates_names_without_tensorflow(tmp_path):
    _data(tmp_path)
    good = _spec(tmp_path, {"name": "MobileNetV3Small", "config": {"minimalistic": True}})
    typo = _spec(tmp_path, {"name": "ResNet5O"}, name="typo.yaml")
    config = _spec(tmp_path, {"name": "ResNet50", "config": {"include_top": True}}, name="config.yaml")
    code = ("import sys; from polytask.cli import main\n"
            "try:\n    main(['check', '--format', 'json', *sys.argv[1:]])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TF', 'tensorflow' in sys.modules or 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, str(good), str(typo), str(config)],
                         capture_output=True, text=True, timeout=120)
    assert "TF False" in out.stdout, out.stdout + out.stderr
    report = json.loads(out.stdout[: out.stdout.index("EXIT")])
    by_name = {f["path"].rsplit("/", 1)[-1]: f["diagnostics"] for f in report["files"]}
    assert by_name["spec.yaml"] == []
    assert "unknown Keras application 'ResNet5O' (did you mean 'ResNet50'?)" in by_name["typo.yaml"][0]["message"]
    assert by_name["typo.yaml"][0]["path"] == "structure.trunk[0].keras_application.name"
    assert "`include_top` is set by polytask" in by_name["config.yaml"][0]["message"]


@pytest.mark.slow
def test_plan_counts_equal_the_model_and_frozen_weights_do_not_train(tmp_path):
    _data(tmp_path)
    path = _spec(tmp_path, {"name": "MobileNetV3Small", "trainable": False, "config": {"minimalistic": True}})
    plan = build_plan(load_spec(path))
    trunk = next(g for g in plan.groups if g.name == "trunk")
    assert trunk.layers[0].kind == "keras.MobileNetV3Small" and trunk.layers[0].output_shape == (576,)
    assert "no weights were loaded" in format_plan(plan)
    program = load_program(path)
    assert plan.totals == program.parameter_counts()
    backbone = program.net.trunk[0]
    assert backbone.weights and not backbone.trainable_weights  # frozen
    assert not any(id(v) in {id(w) for w in backbone.weights} for v in program.trainable)


@pytest.mark.slow
def test_weights_from_a_file_the_test_wrote(tmp_path):
    import keras

    _data(tmp_path)
    source = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3),
                                                 pooling="avg", minimalistic=True)
    rng = np.random.default_rng(1)
    source.set_weights([rng.normal(size=w.shape).astype(np.float32) * 0.01 for w in source.get_weights()])
    source.save_weights(tmp_path / "backbone.weights.h5")
    path = _spec(tmp_path, {"name": "MobileNetV3Small", "weights": "backbone.weights.h5", "trainable": False,
                            "config": {"minimalistic": True}})
    program = load_program(path)
    loaded = program.net.trunk[0].model.get_weights()
    assert all(np.array_equal(a, b) for a, b in zip(loaded, source.get_weights()))
    missing = _spec(tmp_path, {"name": "MobileNetV3Small", "weights": "nope.weights.h5"}, name="missing.yaml")
    result = invoke("train", missing, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 1 and "weights file not found" in result.output


@pytest.mark.slow
def test_a_keras_application_trunk_trains(tmp_path):
    _data(tmp_path, rows=96)
    path = _spec(tmp_path, {"name": "MobileNetV3Small", "weights": None, "config": {"minimalistic": True}}, steps=30)
    result = invoke("train", path, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["split"] == "train"]
    assert len(train) >= 5 and train[-1]["loss"] < train[0]["loss"]
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").exists()
