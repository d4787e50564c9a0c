"""`polytask train --strategy ... --precision ...` end to end, in child processes.

Specs (tests/specs/distribute/): a hard-sharing multi-task spec (2 synthetic tasks, 60
steps, global batch 32, no dropout) and a second-order sinusoid MAML spec (meta-batch 4,
20 meta-iterations). Each is trained once on one device as the reference.

Tolerance: replicas add float32 gradients in another order than one device, so per-step
losses agree to ~1e-6 (measured: max |diff| 6e-7 for both specs); we require 1e-4
absolute on every logged training loss and every test metric.

Logical CPU devices and multi-worker collectives must be configured before TensorFlow
starts, so every run is a fresh `python -m polytask train` process with a timeout; the
cluster helpers kill the whole process group when a run hangs.
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from distributed_support import REPO_ROOT, kill, polytask, run, run_workers, start, start_workers, wait_all

SPECS = REPO_ROOT / "tests" / "specs" / "distribute"
HARD = str(SPECS / "hard.yaml")
META = str(SPECS / "sinusoid.yaml")
TOLERANCE = 1e-4
pytestmark = pytest.mark.slow


def train_losses(run_dir: Path) -> dict[int, float]:
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {r["step"]: r["loss"] for r in records if r["split"] == "train"}


def report(run_dir: Path) -> dict:
    return json.loads((run_dir / "report.json").read_text())


def assert_same_run(run_dir: Path, reference: Path, from_step: int = 0) -> None:
    """Same loss at every logged step (after `from_step`) and the same test metrics."""
    got, want = train_losses(run_dir), train_losses(reference)
    assert sorted(got) == sorted(want)
    steps = [s for s in want if s > from_step]
    worst = max(abs(got[s] - want[s]) for s in steps)
    assert worst < TOLERANCE, f"max |loss difference| {worst:.3g} over steps {steps[0]}..{steps[-1]}"
    got_test, want_test = report(run_dir)["metrics"]["test"], report(reference)["metrics"]["test"]
    assert got_test.keys() == want_test.keys() and want_test
    for key in want_test:
        assert abs(got_test[key] - want_test[key]) < TOLERANCE, key


def train_argv(spec: str, out: Path, *args: str) -> list[str]:
    return polytask("train", spec, "--out", str(out), "-q", *args)


def train(spec: str, out: Path, *args: str, env=None):
    return run(train_argv(spec, out, *args), env=env, timeout=150, cwd=REPO_ROOT)


def train_both(root: Path, *args: str) -> dict[str, Path]:
    """Train the multi-task and the meta spec side by side (two cores): {spec: run directory}."""
    runs = {HARD: root / "hard", META: root / "meta"}
    procs = [start(train_argv(spec, out, *args), cwd=REPO_ROOT) for spec, out in runs.items()]
    for result in wait_all(procs, timeout=180):
        result.check()
    return runs


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    """Reference runs on one device: {spec: run directory}."""
    return train_both(tmp_path_factory.mktemp("one_device"), "--strategy", "one_device")


@pytest.fixture(scope="module")
def two_workers_hard(tmp_path_factory):
    out = tmp_path_factory.mktemp("two_workers") / "hard"
    results = run_workers(polytask("train", HARD, "--out", str(out), "-q", "--strategy", "multi_worker"),
                          timeout=180, cwd=REPO_ROOT)
    return out, [r.check() for r in results]


def test_mirrored_over_two_logical_cpus_gives_the_one_device_loss_trajectory(tmp_path, one_device):
    # Chosen by the spec's runtime section this time (the other tests use --strategy).
    spec = tmp_path / "hard_mirrored.yaml"
    spec.write_text(Path(HARD).read_text() + "runtime: {strategy: mirrored}\n")
    out = tmp_path / "mirrored"
    train(str(spec), out, env={"POLYTASK_LOGICAL_CPUS": "2"}).check()
    assert report(out)["strategy"]["strategy"] == "MirroredStrategy"
    assert report(out)["strategy"]["replicas"] == 2
    assert_same_run(out, one_device[HARD])


def test_two_workers_train_a_multitask_spec_like_one_worker(two_workers_hard, one_device):
    out, (chief, other) = two_workers_hard
    assert report(out)["strategy"]["strategy"] == "CollectiveAllReduceStrategy"
    assert report(out)["strategy"]["replicas"] == 2
    assert_same_run(out, one_device[HARD])
    # Only the chief wrote the run directory; the other worker said so.
    assert "written by the chief" in other.stdout and "written by the chief" not in chief.stdout
    assert (out / "saved_model" / "saved_model.pb").exists()
    # The SavedModel exported under the multi-worker strategy serves on its own.
    from click.testing import CliRunner

    from polytask.cli import main

    evaluated = CliRunner().invoke(main, ["evaluate", str(out), "--format", "json"])
    assert evaluated.exit_code == 0, evaluated.output
    metrics = json.loads(evaluated.output[evaluated.output.index("{"):])["metrics"]
    for key, value in report(out)["metrics"]["test"].items():
        assert abs(metrics[key] - value) < TOLERANCE, key
    splits = [json.loads(line)["split"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert splits.count("train") == 60 and splits.count("validation") == 2 and splits.count("test") == 1


def test_two_workers_train_a_meta_spec_like_one_worker(tmp_path, one_device):
    out = tmp_path / "meta"
    results = run_workers(polytask("train", META, "--out", str(out), "-q", "--strategy", "multi_worker"),
                          timeout=180, cwd=REPO_ROOT)
    for result in results:
        result.check()
    assert report(out)["strategy"]["replicas"] == 2  # the meta-batch of 4 tasks: 2 per worker
    assert_same_run(out, one_device[META])


def test_killed_worker_is_recovered_from_the_chiefs_checkpoint(tmp_path, two_workers_hard):
    """SIGKILL worker 1 after the first checkpoint; restart both with --resume; same end result."""
    out = tmp_path / "killed"
    argv = polytask("train", HARD, "--out", str(out), "-q", "--strategy", "multi_worker")
    # A SIGKILLed worker cannot remove its scratch folder: keep it under tmp_path.
    chief, other = start_workers(argv, cwd=REPO_ROOT, env={"TMPDIR": str(tmp_path)})
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints" / "checkpoint").exists():  # written once a save is complete
            assert chief.poll() is None, "the chief ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.02)
        kill(other)
        killed_chief, _ = wait_all([chief, other], timeout=90)
    finally:
        kill(chief), kill(other)
    assert killed_chief.returncode == 1, killed_chief.stderr[-3000:]
    assert "lost contact with another worker" in killed_chief.stderr
    assert "--resume" in killed_chief.stderr and "Traceback" not in killed_chief.stderr
    assert not (out / "report.json").exists()

    for result in run_workers([*argv, "--resume"], timeout=180, cwd=REPO_ROOT):
        result.check()
    resumed_from = report(out)["resumed_from_step"]
    assert 0 < resumed_from < 60
    # Same losses after the resume point and the same final metrics as the uninterrupted run.
    assert_same_run(out, two_workers_hard[0], from_step=resumed_from)


def test_mixed_bfloat16_trains_with_finite_losses(tmp_path, one_device):
    runs = train_both(tmp_path, "--precision", "mixed_bfloat16")
    for spec, out in runs.items():
        assert report(out)["strategy"]["precision"] == "mixed_bfloat16"
        losses, float32 = train_losses(out), train_losses(one_device[spec])
        assert all(math.isfinite(v) for v in losses.values()), spec
        # bfloat16 really was used (losses are not float32's) yet trains the same model closely.
        assert any(losses[s] != float32[s] for s in losses), spec
        assert all(abs(losses[s] - float32[s]) <= 0.05 * abs(float32[s]) + 1e-3 for s in losses), spec


def test_multi_worker_without_tf_config_is_a_clear_error(tmp_path):
    result = train(HARD, tmp_path / "run", "--strategy", "multi_worker")
    assert result.returncode == 1
    assert "TF_CONFIG" in result.stderr and "hint:" in result.stderr and "Traceback" not in result.stderr
