"""Soft-sharing patterns are distribution-correct: mirrored over 2 logical CPUs gives the
one-device losses (tests/distributed_equivalence.py), with PCGrad's per-task gradients over
each pattern's shared parameters and DSelect-k's regulariser (a sum over each replica's rows
divided by the global batch). ltb is left out: its Gumbel samples are random numbers drawn
per replica, so the two runs are not expected to match number for number."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from distributed_support import run

HELPER = str(Path(__file__).with_name("distributed_equivalence.py"))
VARIANTS = ["sharing:mmoe", "sharing:dselect_k", "sharing:ple", "sharing:cross_stitch"]
pytestmark = pytest.mark.slow


def test_soft_sharing_gives_the_same_losses_mirrored():
    result = run([sys.executable, HELPER, "4", *VARIANTS], env={"POLYTASK_LOGICAL_CPUS": "2"}, timeout=600).check()
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(losses) == sorted(VARIANTS)
    for name, (one_device, mirrored) in losses.items():
        assert len(one_device) == len(mirrored) == 4
        worst = max(abs(a - b) for a, b in zip(one_device, mirrored))
        assert worst < 1e-4, f"{name}: max |loss difference| {worst:.3g}"
