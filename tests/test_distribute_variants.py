"""Loss weightings and meta-learning algorithms are distribution-correct.

Every variant is trained for a few steps on one device and mirrored over 2 logical CPUs
in one child process (tests/distributed_equivalence.py); the losses must agree to 1e-4
(measured: <= 1e-6). The variants are the ones whose code talks across replicas:
GradNorm (per-task gradient norms all-reduced), PCGrad (per-task gradients all-reduced
before surgery), and meta-algorithms whose meta-gradients are not plain loss gradients.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from distributed_support import run

HELPER = str(Path(__file__).with_name("distributed_equivalence.py"))
VARIANTS = ["weighting:gradnorm", "weighting:pcgrad+uncertainty", "meta:reptile", "meta:metasgd"]
pytestmark = pytest.mark.slow


def test_weightings_and_meta_algorithms_give_the_same_losses_mirrored():
    result = run([sys.executable, HELPER, "5", *VARIANTS], env={"POLYTASK_LOGICAL_CPUS": "2"}, timeout=240).check()
    losses = json.loads(result.stdout.strip().splitlines()[-1])
    assert sorted(losses) == sorted(VARIANTS)
    for name, (one_device, mirrored) in losses.items():
        assert len(one_device) == len(mirrored) == 5
        worst = max(abs(a - b) for a, b in zip(one_device, mirrored))
        assert worst < 1e-4, f"{name}: max |loss difference| {worst:.3g}"
