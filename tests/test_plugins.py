"""Plugins: examples/plugins/polytask-focal installed into a temporary path, used end to end.

The plugin is installed with pip (`--target`, no dependencies) and polytask runs in
subprocesses whose PYTHONPATH holds it, the way a user's environment would: entry point
discovery, the generated spec language (schema, did-you-mean), `plan`'s parameter counts
against the built model, short `train` runs (hard sharing; MAML) and `evaluate`. Broken
plugins are fake distributions (a dist-info folder) whose problems must be diagnostics.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from meta_helpers import write_image_classes

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "examples" / "plugins" / "polytask-focal"
TESTS = Path(__file__).resolve().parent


@pytest.fixture(scope="module")
def plugin_path(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    source = tmp_path_factory.mktemp("plugin") / PLUGIN.name  # pip builds in place: keep the repository clean
    shutil.copytree(PLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(target), str(source)], check=True, capture_output=True, text=True)
    assert (target / "polytask_focal" / "focal_loss.py").exists()
    return target


def run(args, path: Path, cwd: Path = ROOT, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(path), str(TESTS)]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def polytask(path: Path, *args, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "polytask", *map(str, args)], path, cwd)


def write(path: Path, spec: dict) -> Path:
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


HEAD = {"polytask": 1, "name": "plugged", "seed": 0}
DIGITS = {"digits": {"source": "sklearn", "name": "digits"},
          "cancer": {"source": "sklearn", "name": "breast_cancer"}}


def hard_spec(tmp_path: Path, **training) -> Path:
    """Two tasks over one input space: 10-class digits (softmax focal) and binary parity (sigmoid focal)."""
    import numpy as np
    from sklearn.datasets import load_digits

    digits = load_digits()
    table = tmp_path / "digits.npz"
    np.savez(table, x=digits.data.astype("float32") / 16.0, digit=digits.target.astype("int64"),
             odd=(digits.target % 2).astype("float32"))
    return write(tmp_path / "hard.yaml", {
        **HEAD,
        "datasets": {"d": {"source": "npz", "path": str(table)}},
        "tasks": {"digit": {"dataset": "d", "target": "digit", "loss": "focal", "metrics": ["accuracy"]},
                  "odd": {"dataset": "d", "target": "odd", "loss": {"focal": {"gamma": 1.0}},
                          "metrics": ["accuracy", "auc"]}},
        "structure": {"sharing": "hard", "trunk": [{"residual_dense": {"units": 32}},
                                                   {"residual_dense": {"units": 32, "activation": "tanh"}}],
                      "head": [{"residual_dense": {"units": 8}}]},
        "training": {"steps": 150, "batch_size": 64, "eval_every": 75, "log_every": 50, "checkpoint_every": 150,
                     "optimizer": {"adam": {"learning_rate": 0.01}}, **training},
    })


def test_the_plugin_joins_the_spec_language(plugin_path, tmp_path):
    schema = json.loads(polytask(plugin_path, "schema").stdout)
    assert "focal" in schema["$defs"]["Loss"]["properties"]
    assert "residual_dense" in schema["$defs"]["Layer"]["anyOf"][1]["properties"]
    focal = schema["$defs"]["Loss"]["properties"]["focal"]
    assert "Focal loss" in json.dumps(focal)

    spec = yaml.safe_load(hard_spec(tmp_path).read_text())
    spec["tasks"]["digit"]["loss"] = "focl"
    spec["structure"]["trunk"][0] = {"residual_dens": {"units": 32}}
    result = polytask(plugin_path, "check", write(tmp_path / "typos.yaml", spec))
    assert result.returncode == 1
    assert "'focl' is not allowed (did you mean 'focal'?)" in result.stdout
    assert "unknown layer kind 'residual_dens' in structure.trunk[0] (did you mean 'residual_dense'?)" in result.stdout

    spec["tasks"]["digit"]["loss"] = {"focal": {"gamma": -1}}
    spec["structure"]["trunk"][0] = {"residual_dense": {"unit": 32}}
    result = polytask(plugin_path, "check", write(tmp_path / "params.yaml", spec))
    assert "tasks.digit.loss.focal.gamma must be at least 0" in result.stdout
    assert "unknown key 'unit' in structure.trunk[0].residual_dense (did you mean 'units'?)" in result.stdout

    # Without the plugin, the same names are unknown: proof that they come from the plugin.
    result = polytask(tmp_path / "nothing-here", "check", hard_spec(tmp_path))
    assert result.returncode == 1 and "'focal' is not allowed" in result.stdout


def test_plan_counts_the_plugin_layer_and_equal_the_built_model(plugin_path, tmp_path):
    spec = hard_spec(tmp_path)
    plan = json.loads(polytask(plugin_path, "plan", "--format", "json", spec).stdout)
    trunk = next(g for g in plan["parameter_groups"] if g["name"] == "trunk")
    # 64 -> 32 projected (kernel, bias, projection), then 32 -> 32 with the identity skip.
    assert trunk["params"] == (64 * 32 + 32 + 64 * 32) + (32 * 32 + 32)
    head = next(g for g in plan["parameter_groups"] if g["name"] == "head[digit]")
    assert head["params"] == (32 * 8 + 8 + 32 * 8) + (8 * 10 + 10)  # then the inferred softmax layer
    assert plan["tasks"]["odd"]["output_units"] == 1 and plan["tasks"]["digit"]["output_units"] == 10
    assert plan["tasks"]["odd"]["loss_params"] == {"gamma": 1.0}
    script = (
        "import json, sys\n"
        "from multitask_support import load_program\n"
        "from polytask.compiler.plan import build_plan\n"
        "from polytask.spec.loader import load_spec\n"
        f"path = {str(spec)!r}\n"
        "print(json.dumps([build_plan(load_spec(path)).totals, load_program(path).parameter_counts()]))\n")
    result = run([sys.executable, "-c", script], plugin_path)
    assert result.returncode == 0, result.stderr[-2000:]
    planned, built = json.loads(result.stdout.strip().splitlines()[-1])
    assert planned == built


@pytest.mark.slow
def test_train_and_evaluate_a_hard_sharing_spec_with_the_plugin(plugin_path, tmp_path):
    spec = hard_spec(tmp_path)
    out = tmp_path / "run"
    result = polytask(plugin_path, "train", spec, "--out", out)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    test = report["test"] if "test" in report else report
    flat = json.dumps(test)
    assert "digit/accuracy" in flat and "odd/auc" in flat
    evaluated = json.loads(polytask(plugin_path, "evaluate", out, "--format", "json").stdout)
    metrics = evaluated.get("metrics", evaluated)
    assert metrics["digit/accuracy"] > 0.5, metrics  # 10 classes: chance is 0.1
    assert metrics["odd/auc"] > 0.7, metrics


@pytest.mark.slow
def test_maml_with_the_focal_loss_and_the_residual_layer(plugin_path, tmp_path):
    data = tmp_path / "glyphs"
    write_image_classes(data, classes=8, per_class=6)
    spec = write(tmp_path / "maml.yaml", {
        **HEAD, "name": "plugged-maml",
        "datasets": {"glyphs": {"source": "image_folder", "path": str(data), "image_size": [28, 28],
                                "grayscale": True, "invert": True}},
        "family": {"source": "classes", "dataset": "glyphs", "ways": 3, "shots": 1, "queries": 2,
                   "class_split": {"train": 0.5, "validation": 0.0, "test": 0.5}},
        "loss": {"focal": {"gamma": 2.0}},
        "structure": {"sharing": "meta", "algorithm": "maml", "inner": {"steps": 1, "learning_rate": 0.1},
                      "model": ["flatten", {"residual_dense": {"units": 16}}]},
        "training": {"meta_batch": 2, "steps": 4, "eval_episodes": 4, "eval_every": 2, "log_every": 2,
                     "checkpoint_every": 4},
    })
    plan = json.loads(polytask(plugin_path, "plan", "--format", "json", spec).stdout)
    assert plan["loss"] == "focal"
    assert plan["parameters"]["model"] == (784 * 16 + 16 + 784 * 16) + (16 * 3 + 3)
    result = polytask(plugin_path, "train", spec, "--out", tmp_path / "run")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_focal_matches_the_paper_formula(plugin_path):
    """FL(p_t) = -(1 - p_t)^gamma log p_t, computed from probabilities in NumPy (Lin et al. 2017, eq. 4)."""
    script = r'''
import json
import numpy as np
import tensorflow as tf
from polytask.spec.registry import LOSSES

focal = LOSSES.get("focal")
rng = np.random.default_rng(0)
out = {}
for gamma in (0.0, 0.5, 2.0, 5.0):
    params = focal.Params(gamma=gamma)
    z = rng.normal(size=(16, 1)).astype("float32") * 3
    y = rng.integers(0, 2, size=(16, 1)).astype("float32")
    p = 1 / (1 + np.exp(-z[:, 0].astype("float64")))
    p_t = np.where(y[:, 0] == 1, p, 1 - p)
    reference = -((1 - p_t) ** gamma) * np.log(p_t)
    got = focal.per_example(params, tf.constant(y), tf.constant(z)).numpy()
    served = focal.numpy_loss(params, y, {"probability": p})
    logits = rng.normal(size=(16, 5)).astype("float32") * 3
    labels = rng.integers(0, 5, size=(16, 1)).astype("float32")
    probs = np.exp(logits - logits.max(1, keepdims=True)); probs /= probs.sum(1, keepdims=True)
    q_t = probs[np.arange(16), labels[:, 0].astype(int)]
    reference_k = -((1 - q_t) ** gamma) * np.log(q_t)
    got_k = focal.per_example(params, tf.constant(labels), tf.constant(logits)).numpy()
    ce = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels[:, 0].astype(int), logits=logits).numpy()
    out[str(gamma)] = {
        "binary": float(np.max(np.abs(got - reference))),
        "served": float(np.max(np.abs(served - reference))),
        "categorical": float(np.max(np.abs(got_k - reference_k))),
        "is_cross_entropy": float(np.max(np.abs(got_k - ce))),
    }
print(json.dumps(out))
'''
    result = run([sys.executable, "-c", script], plugin_path)
    assert result.returncode == 0, result.stderr[-2000:]
    errors = json.loads(result.stdout.strip().splitlines()[-1])
    for gamma, error in errors.items():
        assert error["binary"] < 1e-5 and error["categorical"] < 1e-5 and error["served"] < 1e-5, (gamma, error)
    assert errors["0.0"]["is_cross_entropy"] < 1e-6  # gamma = 0 is cross-entropy
    assert errors["2.0"]["is_cross_entropy"] > 1e-3  # and gamma > 0 is not


def fake_distribution(root: Path, name: str, module: str, code: str) -> None:
    info = root / f"{name.replace('-', '_')}-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[polytask.plugins]\n{name.split('-')[0]} = {module}\n")
    (root / f"{module}.py").write_text(code)


def test_broken_and_clashing_plugins_are_diagnostics_not_tracebacks(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "broken-plugin", "broken_mod", "import does_not_exist\n")
    fake_distribution(site, "exiting-plugin", "exiting_mod", "raise SystemExit(3)\n")
    fake_distribution(site, "clash-plugin", "clash_mod", (
        "from polytask.compiler.losses._regression import RegressionLoss\n"
        "from polytask.spec.registry import LOSSES\n\n"
        "@LOSSES.register\n"
        "class Mine(RegressionLoss):\n"
        "    name = 'mse'\n"
        "    def elementwise(self, params, error, xp):\n"
        "        return error\n"))
    spec = ROOT / "examples" / "sinusoid_pooled.yaml"
    result = polytask(site, "check", spec)
    assert result.returncode == 0 and "Traceback" not in result.stdout + result.stderr
    text = result.stdout
    assert ("warning PT020: plugin 'broken' (distribution broken-plugin 1.0) failed to import broken_mod: "
            "ModuleNotFoundError") in text
    assert "plugin 'exiting' (distribution exiting-plugin 1.0) failed to import exiting_mod: SystemExit" in text
    assert "plugin 'clash' (distribution clash-plugin 1.0) registers loss 'mse', which is built in" in text
    result = polytask(site, "check", "--strict", "--format", "json", spec)
    assert result.returncode == 1
    codes = [d["code"] for d in json.loads(result.stdout)["files"][0]["diagnostics"]]
    assert codes.count("PT020") == 3
    # The built-in mse is the one kept: plan still resolves it.
    assert polytask(site, "plan", spec).returncode == 0


def test_check_with_the_plugin_installed_never_imports_tensorflow(plugin_path, tmp_path):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in ('tensorflow', 'keras'):\n"
        "            raise ImportError('tensorflow imported by check')\n"
        "sys.meta_path.insert(0, Block())\n")
    spec = hard_spec(tmp_path)
    env_path = Path(os.pathsep.join([str(blocker), str(plugin_path)]))
    result = run([sys.executable, "-m", "polytask", "check", str(spec)], env_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "PT020" not in result.stdout  # a plugin that tried to import TensorFlow would fail to load here
    result = run([sys.executable, "-m", "polytask", "schema"], env_path)
    assert result.returncode == 0 and "residual_dense" in result.stdout


def test_plugin_problems_in_registration_and_at_import_are_diagnostics(tmp_path):
    site = tmp_path / "site"
    fake_distribution(site, "heavy-plugin", "heavy_mod", "import keras  # at import time: check would load it\n")
    fake_distribution(site, "oddname-plugin", "oddname_mod", (
        "from polytask.compiler.losses._regression import RegressionLoss\n"
        "from polytask.spec.registry import LOSSES\n\n"
        "@LOSSES.register\n"
        "class Dashed(RegressionLoss):\n"
        "    name = 'my-loss'\n"
        "    def elementwise(self, params, error, xp):\n"
        "        return error\n\n"
        "@LOSSES.register\n"
        "class Fine(RegressionLoss):\n"
        "    name = 'fine_loss'\n"
        "    def elementwise(self, params, error, xp):\n"
        "        return error * error\n"))
    fake_distribution(site, "broken-layer", "broken_layer_mod", (
        "from polytask.compiler.layers import Layer\n"
        "from polytask.spec.registry import LAYERS\n\n"
        "@LAYERS.register\n"
        "class Broken(Layer):\n"
        "    name = 'broken'\n"
        "    def output_shape(self, params, input_shape, form='keras'):\n"
        "        return 1 / 0\n"))
    spec = yaml.safe_load((ROOT / "examples" / "sinusoid_pooled.yaml").read_text())
    spec["structure"]["model"] = ["broken"]
    for task in spec["tasks"].values():
        task["loss"] = "fine_loss"  # the good concept next to the bad name survives
    path = write(tmp_path / "uses_plugins.yaml", spec)
    result = polytask(site, "check", path)
    text = result.stdout
    assert "Traceback" not in text + result.stderr
    assert "plugin 'heavy' (distribution heavy-plugin 1.0) imports keras and tensorflow when it is imported" in text
    assert "registers loss 'my-loss' (Dashed), but its `name` is not an identifier" in text
    assert ("error PT221: structure.model[0] (broken): plugin 'broken' (distribution broken-layer 1.0) failed on an "
            "input of shape [5]: ZeroDivisionError") in text
    assert result.returncode == 1 and "fine_loss" not in text
