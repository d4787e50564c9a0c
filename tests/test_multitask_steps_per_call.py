"""Several training steps per graph call compute exactly the step-by-step updates."""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from multitask_support import load_program, write_spec  # noqa: E402


@pytest.mark.parametrize("weighting", [["equal"], ["dwa"], ["pcgrad"]])
def test_ten_steps_in_one_call_equal_ten_single_steps(tmp_path, weighting):
    spec = write_spec(tmp_path, weighting=weighting, log_every=5)
    one_by_one, batched = load_program(spec), load_program(spec)
    assert batched.steps_per_call >= 10
    for _ in range(13):
        last = one_by_one.train_step()
    outputs, ran = batched.train_steps(10)
    assert ran == 10
    outputs, ran = batched.train_steps(3)
    assert ran == 3
    assert outputs.keys() == last.keys()
    for key in last:
        assert outputs[key] == pytest.approx(last[key], rel=1e-5, abs=1e-6), key
    for a, b in zip(one_by_one.net.weights, batched.net.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_a_non_finite_step_ends_the_call_there(tmp_path):
    spec = write_spec(tmp_path, optimizer={"sgd": {"learning_rate": 1.0e30}})
    program = load_program(spec)
    outputs, ran = program.train_steps(10)
    assert ran < 10 and not all(np.isfinite(v) for v in outputs.values())
