"""`keras: {layer: NAME, config}`: names and arguments checked without TensorFlow, shapes and
counts from Keras in `plan` (equal to the built model), a clear error in meta-learning, and the
sequences example (an LSTM trunk) training."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from cli_support import invoke
from conftest import EXAMPLES
from multitask_support import load_program
from polytask.compiler.plan import build_plan, format_plan
from polytask.spec.loader import load_spec


def _spec(trunk, head=(), sharing="hard", length=12, channels=2):
    return {"polytask": 1, "name": "seq", "seed": 0,
            "datasets": {"seq": {"source": "synthetic", "samples": 300,
                                 "generator": {"kind": "sequences", "tasks": 2, "length": length, "channels": channels},
                                 "split": {"train": 0.7, "validation": 0.15, "test": 0.15}}},
            "tasks": {"a": {"dataset": "seq", "target": "task_0", "loss": "mse"},
                      "b": {"dataset": "seq", "target": "task_1", "loss": "mse"}},
            "structure": {"sharing": sharing, "trunk": list(trunk), "head": list(head)},
            "training": {"steps": 2, "batch_size": 16}}


def _write(folder, spec, name="spec.yaml"):
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


META = {"polytask": 1, "name": "m", "family": {"source": "sinusoid"}, "loss": "mse",
        "structure": {"sharing": "meta", "algorithm": "maml",
                      "model": [{"dense": {"units": 8}}, {"keras": {"layer": "Dense", "config": {"units": 4}}}]}}


def test_check_validates_names_and_arguments_without_tensorflow(tmp_path):
    specs = {
        "good.yaml": _spec([{"keras": {"layer": "LSTM", "config": {"units": 8}}}]),
        "typo.yaml": _spec([{"keras": {"layer": "LTSM", "config": {"units": 8}}}]),
        "argument.yaml": _spec([{"keras": {"layer": "LSTM", "config": {"unit": 8}}}]),
        "required.yaml": _spec([{"keras": {"layer": "MultiHeadAttention", "config": {"num_heads": 2}}}]),
        "merge.yaml": _spec([{"keras": {"layer": "Add"}}]),
        "code.yaml": _spec([{"keras": {"layer": "Lambda", "config": {"function": "x"}}}]),
        "head.yaml": _spec([{"dense": {"units": 4}}], head=[{"keras": {"layer": "Dense", "config": {"units": 4}}}]),
        "meta.yaml": META,
        "nested.yaml": _spec([{"keras": {"layer": "Bidirectional",
                                         "config": {"layer": {"class_name": "GRUU", "config": {"units": 4}}}}}]),
    }
    paths = [str(_write(tmp_path, spec, name)) for name, spec in specs.items()]
    code = ("import sys; from polytask.cli import main\n"
            "try:\n    main(['check', '--format', 'json', *sys.argv[1:]])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\n"
            "print('TF', 'tensorflow' in sys.modules or 'keras' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True, timeout=120)
    assert "TF False" in out.stdout, out.stdout + out.stderr
    report = json.loads(out.stdout[: out.stdout.index("EXIT")])
    by_name = {f["path"].rsplit("/", 1)[-1]: f["diagnostics"] for f in report["files"]}
    assert by_name["good.yaml"] == []
    messages = {name: " ".join(d["message"] for d in diags) for name, diags in by_name.items()}
    assert "unknown Keras layer 'LTSM' (did you mean 'LSTM'?)" in messages["typo.yaml"]
    assert "takes no argument 'unit' (did you mean 'units'?)" in messages["argument.yaml"]
    assert "needs key_dim under `config`" in messages["required.yaml"]
    assert "merges several inputs" in messages["merge.yaml"]
    assert "runs Python code" in messages["code.yaml"]
    assert "cannot be stacked per task" in messages["head.yaml"]
    assert "meta-learning models take no `keras` layer" in messages["meta.yaml"]
    assert by_name["meta.yaml"][0]["path"] == "structure.model[1]"
    assert "the layer 'GRUU' inside `config`: unknown Keras layer 'GRUU' (did you mean 'GRU'?)" in messages["nested.yaml"]
    for name, diags in by_name.items():
        assert all(d["line"] > 0 for d in diags), name


@pytest.mark.parametrize("trunk", [
    [{"keras": {"layer": "LSTM", "config": {"units": 6, "return_sequences": True}}},
     {"keras": {"layer": "MultiHeadAttention", "config": {"num_heads": 2, "key_dim": 3}}},
     {"keras": {"layer": "GlobalAveragePooling1D"}}],
    [{"keras": {"layer": "Conv1D", "config": {"filters": 4, "kernel_size": 3, "activation": "relu"}}},
     {"keras": {"layer": "GRU", "config": {"units": 5}}}, {"dense": {"units": 7}}],
    [{"keras": {"layer": "LayerNormalization"}},
     {"keras": {"layer": "Bidirectional", "config": {"layer": {"class_name": "LSTM", "config": {"units": 3}}}}}],
])
def test_plan_shapes_come_from_keras_and_counts_equal_the_model(tmp_path, trunk):
    path = _write(tmp_path, _spec(trunk))
    plan = build_plan(load_spec(path))
    text = format_plan(plan)
    assert "come from Keras itself (TensorFlow was imported" in text
    layers = next(g for g in plan.groups if g.name == "trunk").layers
    if trunk[0]["keras"]["layer"] == "LSTM":
        # LSTM (12, 2) -> (12, 6): 4 gates x (2 + 6 + 1) x 6; self-attention keeps (12, 6)
        assert [l.kind for l in layers] == ["keras.LSTM", "keras.MultiHeadAttention", "keras.GlobalAveragePooling1D"]
        assert [l.output_shape for l in layers] == [(12, 6), (12, 6), (6,)]
        assert layers[0].params == 4 * (2 + 6 + 1) * 6
        # query, key, value: 6 -> 2 x 3 each (+ bias), output 2 x 3 -> 6 (+ bias)
        assert layers[1].params == 3 * (6 * 6 + 6) + (6 * 6 + 6)
    elif trunk[0]["keras"]["layer"] == "LayerNormalization":
        # gamma and beta of 2 features; two LSTMs (forward, backward) of 4 x (2 + 3 + 1) x 3, concatenated
        assert [l.output_shape for l in layers] == [(12, 2), (6,)]
        assert [l.params for l in layers] == [2 * 2, 2 * 4 * (2 + 3 + 1) * 3]
    else:
        # Conv1D 'valid' shrinks 12 -> 10; GRU (reset_after) has 3 x (4 + 5 + 2) x 5 weights
        assert [l.output_shape for l in layers] == [(10, 4), (5,), (7,)]
        assert layers[1].params == 3 * (4 * 5 + 5 * 5 + 2 * 5)
    program = load_program(path)
    assert plan.totals == program.parameter_counts()
    assert sum(int(np.prod(v.shape)) for v in program.net.weights) == plan.totals["total"]


def test_a_layer_that_does_not_fit_is_positioned_in_plan(tmp_path):
    path = _write(tmp_path, _spec([{"keras": {"layer": "GlobalAveragePooling1D"}},
                                   {"keras": {"layer": "LSTM", "config": {"units": 4}}}]))
    result = invoke("plan", path)
    assert result.exit_code == 1
    assert "structure.trunk[1] (keras) does not fit its input of shape [2]" in result.output
    assert "spec.yaml:" in result.output and "Traceback" not in result.output


@pytest.mark.slow
def test_the_sequences_example_trains_an_lstm_trunk(tmp_path):
    example = EXAMPLES / "sequences_lstm.yaml"
    assert invoke("check", example).exit_code == 0
    result = invoke("train", example, "--out", tmp_path / "run", "--steps", "150", "--quiet")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    test = report["metrics"]["test"]
    # Each target has unit variance: r2 well above 0 means the LSTM state remembers the past.
    assert min(test["short/r2"], test["medium/r2"], test["long/r2"]) > 0.5, test
    assert (tmp_path / "run" / "saved_model" / "saved_model.pb").exists()


@pytest.mark.slow
def test_an_embedding_first_reads_token_ids_unstandardised(tmp_path):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 10, size=(600, 12))
    np.savez(tmp_path / "tokens.npz", x=tokens, threes=(tokens == 3).sum(axis=1).astype(np.float32),
             starts_with_7=(tokens[:, 0] == 7).astype(np.int64))
    spec = {"polytask": 1, "name": "tokens", "seed": 0,
            "datasets": {"t": {"source": "npz", "path": "tokens.npz",
                               "split": {"train": 0.7, "validation": 0.1, "test": 0.2}}},
            "tasks": {"count": {"dataset": "t", "target": "threes", "loss": "mse", "metrics": ["r2"]},
                      "first": {"dataset": "t", "target": "starts_with_7", "loss": "binary_cross_entropy",
                                "metrics": ["accuracy"]}},
            "structure": {"sharing": "hard",
                          "trunk": [{"keras": {"layer": "Embedding", "config": {"input_dim": 10, "output_dim": 8}}},
                                    {"keras": {"layer": "LSTM", "config": {"units": 16}}}]},
            "training": {"steps": 400, "batch_size": 32, "eval_every": 400,
                         "optimizer": {"adam": {"learning_rate": 0.01}}}}
    path = _write(tmp_path, spec)
    program = load_program(path)
    assert not program.data.mean.any() and (program.data.std == 1).all()  # token ids reach the Embedding as ids
    result = invoke("train", path, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    test = json.loads((tmp_path / "run" / "report.json").read_text())["metrics"]["test"]
    assert test["count/r2"] > 0.5, test  # counting a token id is only possible if the ids survive


def test_plan_without_keras_names_the_extra(tmp_path):
    path = _write(tmp_path, _spec([{"keras": {"layer": "LSTM", "config": {"units": 4}}}]))
    code = ("import sys; sys.modules['keras'] = None; sys.modules['tensorflow'] = None\n"
            "from polytask.cli import main\nmain(['plan', sys.argv[1]])\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "planning `keras` layers needs TensorFlow and Keras" in out.stdout + out.stderr
    assert "polytask[tensorflow]" in out.stdout + out.stderr and "Traceback" not in out.stdout + out.stderr
