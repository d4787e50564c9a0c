"""A meta-batch split over 2 replicas (MirroredStrategy on 2 logical CPUs) trains like one device."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = """
import json, os, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
from polytask.runtime.strategy import create_strategy
mirrored = create_strategy("mirrored")  # 2 logical CPUs (POLYTASK_LOGICAL_CPUS)
import tensorflow as tf
one = tf.distribute.OneDeviceStrategy("/cpu:0")
from polytask.compiler.meta import compile_program
from polytask.spec.loader import load_spec
from meta_helpers import sinusoid_spec
out = {{}}
for name, strategy in (("one", one), ("two", mirrored)):
    program = compile_program(load_spec(sinusoid_spec(Path({tmp!r}), "maml", meta_batch=4)), strategy=strategy,
                              jit_compile=False)
    losses = [float(program.train_step()["loss"]) for _ in range(6)]
    out[name] = {{"replicas": strategy.num_replicas_in_sync, "losses": losses}}
print(json.dumps(out))
"""


def _run(tmp_path):
    env = {**os.environ, "POLYTASK_LOGICAL_CPUS": "2", "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = SCRIPT.format(tests=str(Path(__file__).parent), tmp=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_mirrored_meta_batch_matches_one_device(tmp_path):
    result = _run(tmp_path)
    one, two = result["one"], result["two"]
    assert one["replicas"] == 1 and two["replicas"] == 2
    # Same tasks, per-replica meta-gradients scaled by 1/global meta-batch and summed.
    assert two["losses"] == pytest.approx(one["losses"], rel=1e-5, abs=1e-6)
