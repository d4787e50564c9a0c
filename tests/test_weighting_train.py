"""Every registered weighting trains a tiny hard-sharing spec from `weighting: [name]` bare,
and the representation-space options train too (or are refused where there is no
shared representation)."""
from __future__ import annotations

import numpy as np
import pytest

from multitask_support import load_program, spec_dict, write_spec
from polytask.errors import PolytaskError
from polytask.spec.registry import WEIGHTINGS


def _train(tmp_path, weighting, steps=4, **spec_changes):
    spec = spec_dict(steps=steps, log_every=1, eval_every=steps, checkpoint_every=steps, weighting=weighting)
    spec.update(spec_changes)
    program = load_program(write_spec(tmp_path, spec))
    before = [v.numpy().copy() for v in program.net.shared_variables()]
    values = [program.train_step() for _ in range(steps)]
    return program, before, values


@pytest.mark.parametrize("name", WEIGHTINGS.names())
def test_each_weighting_trains_bare_from_a_spec(tmp_path, name):
    program, before, values = _train(tmp_path, [name])
    assert all(np.isfinite(v["loss"]) and np.isfinite(v["grad_norm"]) for v in values)
    moved = max(np.abs(v.numpy() - b).max() for v, b in zip(program.net.shared_variables(), before))
    assert moved > 1e-4, f"{name} did not move the shared trunk"


@pytest.mark.parametrize("weighting", [{"mgda": {"upper_bound": True}}, {"cagrad": {"rep_grad": True}},
                                       {"nash_mtl": {"rep_grad": True}}, "graddrop"])
def test_representation_space_methods_train(tmp_path, weighting):
    program, before, values = _train(tmp_path, [weighting])
    assert program.gradient_space == "representation"
    assert all(np.isfinite(v["loss"]) for v in values)
    assert max(np.abs(v.numpy() - b).max() for v, b in zip(program.net.shared_variables(), before)) > 1e-4


def test_representation_space_needs_a_shared_representation(tmp_path):
    spec = spec_dict(weighting=["graddrop"])
    tasks = {name: task for name, task in spec["tasks"].items() if name != "a"}  # one output unit each
    pooled = {"sharing": "pooled", "descriptor": "onehot", "model": [{"dense": {"units": 8, "activation": "relu"}}]}
    with pytest.raises(PolytaskError, match="shared representation"):
        _train(tmp_path, ["graddrop"], steps=1, structure=pooled, tasks=tasks)


def test_mixing_parameter_and_representation_gradients_is_refused(tmp_path):
    with pytest.raises(PolytaskError, match="mix per-task gradients"):
        _train(tmp_path, ["graddrop", "pcgrad"], steps=1)


@pytest.mark.parametrize("weighting", ["pcgrad", "mgda"])
def test_vectorised_per_task_gradients_equal_the_python_loop(tmp_path, weighting):
    """The Jacobian pass (through the trunk only, from one backward pass of the heads) gives
    the same per-task gradients as one tape.gradient per task: same weights after 3 steps."""
    trained = []
    for mode in ("jacobian", "loop"):
        spec = spec_dict(steps=3, log_every=1, eval_every=3, checkpoint_every=3, weighting=[weighting])
        spec["structure"]["trunk"] = [{"dense": {"units": 16, "activation": "tanh"}}]  # no dropout: same draws
        program = load_program(write_spec(tmp_path / mode, spec))
        program.task_gradients = mode
        for _ in range(3):
            program.train_step()
        trained.append([v.numpy() for v in program.net.shared_variables()])
    for a, b in zip(*trained):
        np.testing.assert_allclose(a, b, atol=1e-5)
