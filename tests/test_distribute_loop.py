"""The generic training loop under MirroredStrategy and MultiWorkerMirroredStrategy.

A tiny program (tests/distributed_toy_program.py) is trained by `runtime.loop.fit` in
child processes, so these tests check the loop's distribution behaviour -- the chief
writes, every worker restores the chief's checkpoint, a lost worker is a clear error and
a restart with --resume continues -- independently of any compiler.

Tolerance: replicas sum float32 gradients in a different order than one device does, so
weights agree to ~1e-6; we allow 1e-4 absolute.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from distributed_support import kill, run, run_workers, start_workers, wait_all

TOY = str(Path(__file__).with_name("distributed_toy_program.py"))
TOLERANCE = 1e-4
STEPS = 150  # ~20 ms a step with two workers: a kill after the first checkpoint lands seconds before the end
pytestmark = pytest.mark.slow


def _weights(stdout: str) -> list[np.ndarray]:
    result = json.loads(stdout.strip().splitlines()[-1])
    return [np.asarray(w) for w in result["weights"]]


def _max_difference(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b))


@pytest.fixture(scope="module")
def one_device_weights(tmp_path_factory):
    out = tmp_path_factory.mktemp("one_device") / "run"
    return _weights(run([sys.executable, TOY, "one_device", str(out), str(STEPS)]).check().stdout)


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """An uninterrupted two-worker run: (run directory, chief result, other worker result)."""
    out = tmp_path_factory.mktemp("two_workers") / "run"
    chief, other = run_workers([sys.executable, TOY, "multi_worker", str(out), str(STEPS)], timeout=150)
    return out, chief.check(), other.check()


def test_mirrored_over_two_logical_cpus_matches_one_device(tmp_path, one_device_weights):
    result = run([sys.executable, TOY, "mirrored", str(tmp_path / "run"), str(STEPS)],
                 env={"POLYTASK_LOGICAL_CPUS": "2"}).check()
    assert _max_difference(_weights(result.stdout), one_device_weights) < TOLERANCE


def test_two_workers_match_one_device_and_only_the_chief_writes(two_workers, one_device_weights):
    out, chief, other = two_workers
    assert json.loads(chief.stdout.splitlines()[-1])["chief"] is True
    assert _max_difference(_weights(chief.stdout), one_device_weights) < TOLERANCE
    assert _max_difference(_weights(other.stdout), one_device_weights) < TOLERANCE
    # One metrics line per step, written once (by the chief), and the chief's checkpoints.
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps == list(range(1, STEPS + 1))
    assert (out / "checkpoints" / f"ckpt-{STEPS}.index").exists()


def test_killed_worker_is_recovered_from_the_chiefs_checkpoint(tmp_path, two_workers):
    out = tmp_path / "run"
    argv = [sys.executable, TOY, "multi_worker", str(out), str(STEPS)]
    chief, other = start_workers([*argv, "--checkpoint-every", "25"])
    try:
        deadline = time.monotonic() + 90
        while not list((out / "checkpoints").glob("ckpt-*.index")):
            assert chief.poll() is None and time.monotonic() < deadline, "no checkpoint before the deadline"
            time.sleep(0.05)
        kill(other)
        killed = wait_all([chief, other], timeout=60)
    finally:
        kill(chief), kill(other)
    assert killed[1].returncode != 0
    assert killed[0].returncode == 1, killed[0].stderr[-3000:]
    assert "lost contact with another worker" in killed[0].stderr
    assert "--resume" in killed[0].stderr
    assert "Traceback" not in killed[0].stderr

    resumed = run_workers([*argv, "--resume"], timeout=150)
    result = json.loads(resumed[0].check().stdout.splitlines()[-1])
    resumed[1].check()
    assert 0 < result["resumed_from_step"] < STEPS
    # Same weights as never having stopped (the uninterrupted two-worker run).
    assert _max_difference(_weights(resumed[0].stdout), _weights(two_workers[1].stdout)) < TOLERANCE
