"""The one optimizer builder every sharing pattern uses: spec settings reach Keras intact."""
from __future__ import annotations

import pytest

from polytask.spec.models import Training

keras = pytest.importorskip("keras")


def build(**training):
    from polytask.compiler.optimizers import make_optimizer

    return make_optimizer(Training.model_validate(training))


def test_adamw_keeps_an_explicit_zero_weight_decay():
    assert build(optimizer={"adamw": {"weight_decay": 0.0}}).weight_decay == 0.0
    assert build(optimizer="adamw").weight_decay == pytest.approx(0.004)


def test_warmup_applies_to_every_schedule_kind():
    for kind in ("constant", "exponential", "cosine"):
        optimizer = build(steps=100, optimizer={"sgd": {"learning_rate": 0.1}},
                          schedule={"kind": kind, "warmup_steps": 10})
        schedule = optimizer._learning_rate
        first, later = float(schedule(0)), float(schedule(9))
        assert 0.0 <= first < later <= 0.1 + 1e-6, kind


def test_clipping_and_optimizer_kinds():
    assert build(optimizer="sgd", gradient_clip_norm=1.5).global_clipnorm == 1.5
    assert type(build(optimizer="rmsprop")).__name__ == "RMSprop"
