"""kill -9 at random moments -- mid-step, mid-checkpoint-write, mid-export -- and then recover:
every trial ends, after `train --resume` (or a fresh start when no checkpoint was written yet),
with the uninterrupted run's weights, and the run's export loads.

Each trial trains in a fresh subprocess (that is what gets killed); recovery runs in-process.
Set POLYTASK_KILL_TRIALS to run more trials, POLYTASK_KILL_SEED to replay a sequence.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cli_support import invoke
from multitask_support import spec_dict, write_spec
from run_dir_support import checkpoint_weights

pytestmark = pytest.mark.slow

STEPS = 120
TRIALS = int(os.environ.get("POLYTASK_KILL_TRIALS", "10"))
SEED = int(os.environ.get("POLYTASK_KILL_SEED", str(int(time.time()))))


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    folder = tmp_path_factory.mktemp("kill")
    spec = write_spec(folder, spec_dict(steps=STEPS, checkpoint_every=5, eval_every=40, log_every=10))
    started = time.perf_counter()
    result = invoke("train", spec, "--out", folder / "full", "--quiet")
    assert result.exit_code == 0, result.output
    return spec, checkpoint_weights(folder / "full" / "checkpoints", STEPS), time.perf_counter() - started


def _writing_checkpoint(checkpoints: Path) -> bool:
    """True while TensorFlow (ckpt-N_temp) or polytask (.tmp- manifest) is writing a checkpoint."""
    try:
        return any("_temp" in p.name or ".tmp-" in p.name for p in checkpoints.iterdir())
    except OSError:
        return False


def _kill_at(process: subprocess.Popen, out: Path, moment: str, delay: float) -> str:
    """Wait for `moment` in the run, SIGKILL it, and say what it was doing when it died."""
    deadline = time.time() + 300
    while not (out / "train.lock").exists():  # TensorFlow is imported and the run has begun
        if process.poll() is not None or time.time() > deadline:
            break
        time.sleep(0.002)
    if moment == "random":
        time.sleep(delay)
    else:
        while process.poll() is None and time.time() < deadline:
            if moment == "checkpoint write" and _writing_checkpoint(out / "checkpoints"):
                break
            if moment == "export" and (out / "saved_model.partial").exists():
                break
    if process.poll() is not None:
        return "after it finished"
    caught = ("checkpoint write" if _writing_checkpoint(out / "checkpoints")
              else "export" if (out / "saved_model.partial").exists() else moment)
    process.send_signal(signal.SIGKILL)
    process.wait()
    return caught


def test_kill_9_at_random_moments_then_recover_to_the_uninterrupted_weights(reference, tmp_path):
    spec, final, seconds = reference
    rng = random.Random(SEED)
    moments = ["export", "checkpoint write", "checkpoint write"] + ["random"] * max(TRIALS - 3, 0)
    seen = Counter()
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    for trial, moment in enumerate(moments[:TRIALS]):
        out = tmp_path / f"trial-{trial}"
        process = subprocess.Popen([sys.executable, "-m", "polytask", "train", str(spec), "--out", str(out),
                                    "--quiet"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        what = _kill_at(process, out, moment, rng.uniform(0, 0.9 * seconds))
        seen[what] += 1
        context = f"trial {trial} (seed {SEED}), killed during: {what}"

        result = invoke("train", spec, "--out", out, "--quiet", "--resume")
        if result.exit_code != 0:  # killed before its first checkpoint: start again, as the message says
            # (killed before the run folder existed: nothing to resume either)
            assert "no checkpoint in" in result.output or "no such run directory" in result.output, \
                (context, result.output)
            result = invoke("train", spec, "--out", out, "--quiet")
        assert result.exit_code == 0, (context, result.output)
        actual = checkpoint_weights(out / "checkpoints", STEPS)
        assert set(actual) == set(final), context
        for name, expected in final.items():
            np.testing.assert_allclose(actual[name], expected, rtol=0, atol=1e-6, err_msg=f"{context}: {name}")
        evaluated = invoke("evaluate", out)
        assert evaluated.exit_code == 0, (context, evaluated.output)
    print(f"kill -9 trials (seed {SEED}): {dict(seen)}")
