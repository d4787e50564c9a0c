"""The plan: shapes, inferred output layers and parameter counts, without TensorFlow.

Counts must equal the built Keras model's, for hard sharing (several head groups, batch norm
in the trunk) and pooled sharing (one-hot and embedding descriptors).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from multitask_support import load_program, spec_dict, write_spec
from polytask.compiler.plan import build_plan, format_plan
from polytask.spec.loader import load_spec


def _count(variables) -> int:
    return sum(int(np.prod(v.shape)) for v in variables)


def test_hard_plan_shapes_and_output_layers(tmp_path):
    plan = build_plan(load_spec(write_spec(tmp_path)))
    assert plan.tasks["a"].output_units == 3  # cross_entropy: one unit per class
    assert plan.tasks["b"].output_units == 1  # binary
    assert plan.tasks["c"].output_units == 1  # regression: target dimension
    assert {t.input_shape for t in plan.tasks.values()} == {(6,)}
    # a (10 units out) and b/c (1 unit out) have different head shapes: two stacks.
    assert plan.tasks["b"].head_group == plan.tasks["c"].head_group != plan.tasks["a"].head_group
    trunk = next(g for g in plan.groups if g.name == "trunk")
    assert trunk.shared and trunk.tasks == ["a", "b", "c"] and trunk.params == 6 * 16 + 16
    head_a = next(g for g in plan.groups if g.name == "head[a]")
    assert head_a.params == (16 * 8 + 8) + (8 * 3 + 3) and not head_a.shared
    text = format_plan(plan)
    assert "trunk: 112 params (shared by 3 tasks)" in text and "Plan: " in text


@pytest.mark.parametrize("structure", [
    {"sharing": "hard", "trunk": [{"dense": {"units": 12, "activation": "relu"}}, {"batch_norm": {}},
                                  {"dense": {"units": 10}}],
     "head": [{"dense": {"units": 7, "activation": "tanh"}}, {"layer_norm": {}}, {"dropout": {"rate": 0.1}}]},
    {"sharing": "pooled", "descriptor": "onehot", "model": [{"dense": {"units": 9, "activation": "relu"}}]},
    {"sharing": "pooled", "descriptor": "embedding", "embedding_dim": 4,
     "model": [{"dense": {"units": 9, "activation": "relu"}}, {"batch_norm": {}}]},
])
def test_plan_counts_equal_the_built_model(tmp_path, structure):
    spec = spec_dict(steps=1)
    spec["structure"] = structure
    if structure["sharing"] == "pooled":  # pooled needs one output space: three regression tasks
        spec["tasks"] = {name: {"dataset": "table", "target": target, "loss": "mse"}
                         for name, target in (("a", "c"), ("b", "f5"), ("c", "f4"))}
        spec["datasets"]["table"]["features"] = ["f0", "f1", "f2", "f3"]
    path = write_spec(tmp_path, spec)
    plan = build_plan(load_spec(path))
    program = load_program(path)
    built = program.parameter_counts()
    assert built["total"] == _count(program.net.weights) + _count(program.chain.trainable_variables())
    assert plan.totals == built
    if structure["sharing"] == "pooled" and structure["descriptor"] == "embedding":
        assert plan.totals["task_specific"] == 3 * 4


def test_plan_does_not_import_tensorflow(tmp_path):
    path = write_spec(tmp_path)
    code = ("import sys; from polytask.spec.loader import load_spec; from polytask.compiler.plan import build_plan;"
            f"build_plan(load_spec({str(path)!r})); assert 'tensorflow' not in sys.modules, 'tensorflow imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pooled_with_different_output_spaces_is_refused(tmp_path):
    spec = spec_dict()
    spec["structure"] = {"sharing": "pooled", "descriptor": "onehot", "model": [{"dense": {"units": 4}}]}
    from polytask.errors import PolytaskError

    try:
        loaded = load_spec(write_spec(tmp_path, spec))
    except PolytaskError as exc:  # the checker may already refuse it
        assert "pooled" in str(exc)
        return
    with pytest.raises(PolytaskError, match="one output space"):
        build_plan(loaded)


def test_a_csv_column_named_x_is_one_input_among_the_others(tmp_path):
    """The plan takes its default inputs from the data layer: for csv, every non-target column."""
    import json

    from click.testing import CliRunner

    from polytask.cli import main
    from polytask.compiler.data import load_table

    (tmp_path / "data.csv").write_text(
        "x,f1,f2,a,b,c\n" + "".join(f"{i},{i % 3},{-i},{i % 3},{i % 2},{0.5 * i}\n" for i in range(30)))
    path = write_spec(tmp_path)
    loaded = load_spec(path)
    plan = build_plan(loaded)
    for task in plan.tasks.values():
        assert task.input_columns == ["x", "f1", "f2"] and task.input_shape == (3,)
    table = load_table("table", loaded.spec.datasets["table"], loaded)
    assert table.input_columns(None, {"a", "b", "c"}) == ["x", "f1", "f2"]  # what the model is fed
    result = CliRunner().invoke(main, ["plan", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["tasks"]["a"]["input_shape"] == [3]
