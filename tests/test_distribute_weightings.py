"""Every registered weighting combines GLOBAL per-task quantities: mirrored over 2 logical
CPUs it trains exactly like one device.

One child process (tests/distributed_equivalence.py) trains each weighting on the tiny
hard-sharing spec for 5 steps under OneDeviceStrategy and under MirroredStrategy; the
per-step losses must agree to 1e-4 (float32 all-reduce order is the only difference; the
iterative solvers of MGDA/CAGrad/Nash-MTL/UPGrad see the same Gramian up to rounding).
Representation-space variants cover the T x T Gramian all-reduce (MGDA-UB, CAGrad,
Nash-MTL with rep_grad) and the all-gathered representation gradients (GradDrop).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from distributed_support import run
from polytask.spec.registry import WEIGHTINGS

HELPER = str(Path(__file__).with_name("distributed_equivalence.py"))
REPRESENTATION = ["weighting:mgda.upper_bound", "weighting:cagrad.rep_grad", "weighting:nash_mtl.rep_grad",
                  "weighting:graddrop+uncertainty"]
VARIANTS = [f"weighting:{name}" for name in WEIGHTINGS.names()] + REPRESENTATION
TOLERANCE = 1e-4
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def losses():
    result = run([sys.executable, HELPER, "5", *VARIANTS], env={"POLYTASK_LOGICAL_CPUS": "2"}, timeout=1500).check()
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("variant", VARIANTS)
def test_mirrored_equals_one_device(losses, variant):
    one_device, mirrored = losses[variant]
    assert len(one_device) == len(mirrored) == 5
    worst = max(abs(a - b) for a, b in zip(one_device, mirrored))
    assert worst < TOLERANCE, f"{variant}: max |loss difference| {worst:.3g} ({one_device} vs {mirrored})"
    assert len(set(one_device)) > 1  # it trained: the losses changed between steps
