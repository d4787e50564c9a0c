"""Resource limits: a batch larger than the training split is a `check` warning (PT226) and a
clamp at train time (a huge one aborted TensorFlow with std::bad_alloc); running out of memory is
a clear error, and a run that never reached its first step leaves no run folder behind."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli_support import invoke
from multitask_support import spec_dict, write_spec
from polytask.spec.checker import check_source

DATA = Path(__file__).parent / "specs" / "valid"
DIGITS = ("polytask: 1\nname: limits\ndatasets:\n  digits: {source: sklearn, name: digits}\n"
          "tasks:\n  digit: {dataset: digits, target: target, loss: cross_entropy}\n")


def test_a_batch_above_the_training_split_is_a_warning():
    result = check_source(DIGITS + "training: {batch_size: 2147483647}\n", "spec.yaml", DATA)
    assert result.valid
    [warning] = [d for d in result.diagnostics if d.code == "PT226"]
    assert warning.severity == "warning" and warning.line == 7
    assert "larger than the training split (1438 examples" in warning.message
    fine = check_source(DIGITS + "training: {batch_size: 256}\n", "spec.yaml", DATA)
    assert not [d for d in fine.diagnostics if d.code == "PT226"]


def test_a_huge_batch_is_clamped_at_train_time(tmp_path):
    spec = write_spec(tmp_path, spec_dict(steps=3, batch_size=2147483647, eval_every=3, checkpoint_every=3))
    result = invoke("train", spec, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    assert "training.batch_size 2147483647 is larger than the 432 training examples" in result.output
    assert json.loads((tmp_path / "run" / "report.json").read_text())["steps"] == 3


@pytest.mark.parametrize("error", ["MemoryError", "ResourceExhaustedError"])
def test_out_of_memory_while_building_is_an_error_and_leaves_no_folder(tmp_path, monkeypatch, error):
    import tensorflow as tf

    import polytask.compiler.compile as compile_module

    def exhausted(*args, **kwargs):
        if error == "MemoryError":
            raise MemoryError()
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor with shape[2147483647,6]")

    monkeypatch.setattr(compile_module, "compile_program", exhausted)
    spec = write_spec(tmp_path / "spec")
    out = tmp_path / "runs" / "new"
    result = invoke("train", spec, "--out", out, "--quiet")
    assert result.exit_code == 1, result.output
    assert "out of memory while building the model" in result.output and "training.batch_size" in result.output
    assert not (tmp_path / "runs").exists(), "nothing of the failed run may remain"


def test_a_failure_before_the_first_step_empties_only_what_it_created(tmp_path, monkeypatch):
    import tensorflow as tf

    import polytask.runtime.train as train_module

    def oom_in_first_step(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "OOM when allocating tensor")

    monkeypatch.setattr(train_module, "fit", oom_in_first_step)
    spec = write_spec(tmp_path / "spec")
    out = tmp_path / "mine"
    out.mkdir()  # an empty folder the user made: it stays, empty
    result = invoke("train", spec, "--out", out, "--quiet")
    assert result.exit_code == 1, result.output
    assert "out of memory while training" in result.output
    assert out.is_dir() and not list(out.iterdir())


def test_a_model_too_large_for_the_free_memory_is_refused_before_it_is_built(tmp_path, monkeypatch):
    """mmoe with a billion experts used to hang while Keras created the layers; the planned
    parameter count (weights, gradients, Adam slots) is checked against the free memory first."""
    import polytask.compiler.compile as compile_module

    spec = write_spec(tmp_path / "spec")
    monkeypatch.setattr(compile_module, "available_memory", lambda: 1000)  # 1 kB free
    out = tmp_path / "runs" / "new"
    result = invoke("train", spec, "--out", out, "--quiet")
    assert result.exit_code == 1, result.output
    assert "parameters: training needs at least" in result.output and "GiB free" in result.output
    assert "polytask plan" in result.output
    assert not (tmp_path / "runs").exists(), "nothing of the refused run may remain"
    monkeypatch.setattr(compile_module, "available_memory", lambda: None)  # unknown: no refusal
    assert invoke("train", spec, "--out", out, "--quiet", "--steps", "2").exit_code == 0


def test_available_memory_is_read_from_this_machine():
    from polytask.compiler.compile import available_memory

    free = available_memory()
    assert free is None or 2**20 < free < 2**50


def test_a_model_with_thousands_of_layers_is_refused_before_it_is_built(tmp_path):
    """ple with 1,000 levels (about 6,000 layers, 0.9M parameters) sat for minutes building its graph."""
    spec = tmp_path / "ple.yaml"
    spec.write_text("polytask: 1\nname: deep\ndatasets:\n  m: {source: synthetic, generator: {kind: mmoe}, samples: 200}\n"
                    "tasks:\n  a: {dataset: m, target: task_0, loss: mse}\n  b: {dataset: m, target: task_1, loss: mse}\n"
                    "structure:\n  sharing: ple\n  levels: 1000\n  experts: {layers: [{dense: {units: 2}}]}\n")
    result = invoke("train", spec, "--out", tmp_path / "run", "--quiet")
    assert result.exit_code == 1, result.output
    assert "layers (experts x levels" in result.output and "building more than 2,000" in result.output
    assert not (tmp_path / "run").exists()


def test_a_thousand_stacked_heads_count_as_one_set_of_layers(tmp_path):
    """Hard sharing builds same-shaped heads as one stacked head, so 1,000 tasks are 4 layers, not 2,002."""
    from polytask.compiler.compile import refuse_what_cannot_fit
    from polytask.compiler.plan import build_plan
    from polytask.spec.loader import load_spec

    tasks = "".join(f"  t{i}: {{dataset: m, target: task_{i % 2}, loss: mse}}\n" for i in range(1000))
    spec = tmp_path / "many.yaml"
    spec.write_text("polytask: 1\nname: many\ndatasets:\n  m: {source: synthetic, generator: {kind: mmoe}, samples: 200}\n"
                    f"tasks:\n{tasks}structure:\n  sharing: hard\n  trunk: [{{dense: {{units: 8}}}}]\n"
                    "  head: [{dense: {units: 4}}]\n")
    plan = build_plan(load_spec(spec, check_data=False))
    assert sum(len(group.layers) for group in plan.groups) > 2000  # the per-task slices the plan lists
    refuse_what_cannot_fit(plan)  # not refused
