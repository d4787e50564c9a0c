"""Resume is exact: a run killed with SIGKILL and resumed ends with the uninterrupted run's weights.

Also: Ctrl-C (SIGINT) and SIGTERM save a checkpoint and exit cleanly with status 130.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from multitask_support import checkpoint_values, polytask, spec_dict, write_spec

STEPS = 300
EVERY = 50

pytestmark = pytest.mark.slow


def _start(spec: Path, out: Path, *extra: str) -> subprocess.Popen:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "polytask", "train", str(spec), "--out", str(out), "--quiet", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _saved(state_file: Path, step: int) -> bool:
    """True once the CheckpointManager has recorded checkpoint `step` (its state file is written last)."""
    try:
        return f"ckpt-{step}" in state_file.read_text()
    except OSError:
        return False


def _wait_for(checkpoints: Path, step: int, process: subprocess.Popen, timeout: float = 120) -> None:
    path = checkpoints / "checkpoint"
    deadline = time.time() + timeout
    while not _saved(path, step):
        if process.poll() is not None:
            out, err = process.communicate()
            pytest.fail(f"training ended before checkpoint {step} was saved:\n{err[-2000:]}")
        if time.time() > deadline:
            process.kill()
            pytest.fail(f"checkpoint {step} was not saved within {timeout}s")
        time.sleep(0.005)


@pytest.fixture(scope="module")
def resume_spec(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("resume")
    spec = spec_dict(steps=STEPS, checkpoint_every=EVERY, eval_every=EVERY, log_every=50)
    return write_spec(folder, spec)


def test_kill_9_then_resume_ends_with_the_uninterrupted_weights(resume_spec, tmp_path):
    full = polytask("train", str(resume_spec), "--out", str(tmp_path / "full"), "--quiet")
    assert full.returncode == 0, full.stderr[-3000:]

    killed_dir = tmp_path / "killed"
    process = _start(resume_spec, killed_dir)
    _wait_for(killed_dir / "checkpoints", EVERY, process)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL
    assert not (killed_dir / "report.json").exists()
    saved = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (killed_dir / "checkpoints").glob("ckpt-*.index"))
    assert saved and max(saved) < STEPS, "the run must have been killed before it finished"

    resumed = polytask("train", str(resume_spec), "--out", str(killed_dir), "--quiet", "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    expected = checkpoint_values(tmp_path / "full" / "checkpoints")
    actual = checkpoint_values(killed_dir / "checkpoints")
    assert expected and set(expected) == set(actual)
    for name in expected:
        np.testing.assert_allclose(actual[name], expected[name], rtol=0, atol=1e-6, err_msg=name)
    # The weights really moved during training (the comparison is not of two untrained models).
    import json

    report = json.loads((killed_dir / "report.json").read_text())
    assert report["steps"] == STEPS and report["resumed_from_step"] in saved
    steps_logged = [json.loads(line)["step"] for line in (killed_dir / "metrics.jsonl").read_text().splitlines()
                    if json.loads(line)["split"] == "train"]
    assert steps_logged == sorted(set(steps_logged)), "resume must not leave duplicate log lines"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_saves_a_checkpoint_and_exits_cleanly(resume_spec, tmp_path, signum):
    """Ctrl-C, and a scheduler's SIGTERM before it kills, stop at a checkpoint --resume continues from."""
    out = tmp_path / "interrupted"
    process = _start(resume_spec, out)
    _wait_for(out / "checkpoints", EVERY, process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    assert "interrupted at step" in err and "--resume" in err
    step = int(err.split("interrupted at step ")[1].split(";")[0])
    assert (out / "checkpoints" / f"ckpt-{step}.index").exists()


def test_sigterm_while_the_model_is_built_exits_130_and_leaves_nothing(resume_spec, tmp_path):
    out = tmp_path / "early"
    process = _start(resume_spec, out)
    deadline = time.time() + 120
    while not (out / "inputs.json").exists():  # written just before the model is compiled
        assert process.poll() is None and time.time() < deadline, "train ended or stalled before building"
        time.sleep(0.005)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "Aborted!" not in err
    if "interrupted at step" not in err:  # the signal landed before the first step
        assert "interrupted (Ctrl-C or SIGTERM)" in err
        assert not out.exists(), sorted(p.name for p in out.iterdir())
