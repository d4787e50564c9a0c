"""Run directories for the damage, lock and kill tests: one tiny spec, trained once per module.

    finished     60 steps, checkpoints every 10 (TensorFlow keeps ckpt-40/50/60), exported
    interrupted  what a run killed at step ~45 leaves: checkpoints up to 40, no report, no export

Both continue (`train --resume`, 60 steps) to the same weights: `final_weights()`.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cli_support import invoke
from multitask_support import spec_dict, write_spec

STEPS = 60
EVERY = 10


@dataclass
class Runs:
    spec: Path
    finished: Path
    interrupted: Path
    inputs: Path  # a predict input (the task's columns)
    final: dict  # weights of the uninterrupted run after STEPS steps

    def resume(self, out: Path, *extra):
        return invoke("train", self.spec, "--out", out, "--resume", "--quiet", *extra)

    def evaluate(self, out: Path):
        return invoke("evaluate", out)

    def predict(self, out: Path):
        return invoke("predict", out, self.inputs, "--task", "a")


def build_runs(folder: Path) -> Runs:
    spec = write_spec(folder, spec_dict(steps=STEPS, checkpoint_every=EVERY, eval_every=20, log_every=10))
    finished = folder / "finished"
    result = invoke("train", spec, "--out", finished, "--quiet")
    assert result.exit_code == 0, result.output
    interrupted = folder / "interrupted"
    result = invoke("train", spec, "--out", interrupted, "--quiet", "--steps", "40")
    assert result.exit_code == 0, result.output
    # A run killed after its step-40 checkpoint: no report and no export yet.
    (interrupted / "report.json").unlink()
    shutil.rmtree(interrupted / "saved_model")
    inputs = folder / "inputs.csv"
    lines = (folder / "data.csv").read_text().splitlines()[:4]
    inputs.write_text("\n".join(",".join(line.split(",")[:6]) for line in lines) + "\n")
    return Runs(spec, finished, interrupted, inputs, checkpoint_weights(finished / "checkpoints", STEPS))


def checkpoint_weights(directory: Path, step: int) -> dict[str, np.ndarray]:
    """Every variable of checkpoint ckpt-`step` (model, optimizer, loop state; not the data iterator,
    which only `restore` reads)."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(directory / f"ckpt-{step}"))
    return {name: reader.get_tensor(name) for name, dtype in reader.get_variable_to_dtype_map().items()
            if "_CHECKPOINTABLE_OBJECT_GRAPH" not in name and dtype != tf.variant}


def assert_final_weights(runs: Runs, out: Path) -> None:
    actual = checkpoint_weights(out / "checkpoints", STEPS)
    assert set(actual) == set(runs.final)
    for name, expected in runs.final.items():
        if expected.dtype.kind in "fiu":
            np.testing.assert_allclose(actual[name], expected, rtol=0, atol=1e-6, err_msg=name)
        else:
            assert np.array_equal(actual[name], expected), name


def copy_run(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, symlinks=True)
    return target
