"""Omniglot (the small background zips in ../shared/data): real episodes, real learning.

Skipped cleanly when the zips are absent (the `omniglot_zips` fixture).
"""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

from meta_helpers import write_spec  # noqa: E402

pytestmark = pytest.mark.data

SMALL_NET = [
    {"conv2d": {"filters": 16, "kernel_size": 3}}, {"batch_norm": {}}, {"activation": "relu"},
    {"max_pool2d": {"pool_size": 2}},
    {"conv2d": {"filters": 16, "kernel_size": 3}}, {"batch_norm": {}}, {"activation": "relu"},
    {"max_pool2d": {"pool_size": 2}},
    {"conv2d": {"filters": 16, "kernel_size": 3}}, {"batch_norm": {}}, {"activation": "relu"},
    {"max_pool2d": {"pool_size": 2}}, "flatten",
]


def _spec(tmp_path, zips, algorithm, **family):
    datasets = {f"small{i + 1}": {"source": "image_folder", "path": str(z), "image_size": [28, 28],
                                  "grayscale": True, "invert": True, "class_depth": 2} for i, z in enumerate(zips)}
    names = list(datasets)
    return write_spec(tmp_path / f"{algorithm}.yaml", {
        "polytask": 1, "name": f"omniglot-{algorithm}", "seed": 0, "datasets": datasets,
        "family": {"source": "classes", "dataset": names[0], "extra_datasets": names[1:], "ways": 5, "shots": 1,
                   "queries": 5, "rotations": [0, 90, 180, 270], **family},
        "loss": "cross_entropy",
        "structure": {"sharing": "meta", "algorithm": algorithm, "model": SMALL_NET,
                      "inner": {"steps": 1, "learning_rate": 0.4, "eval_steps": 2}},
        "training": {"meta_batch": 4, "steps": 60, "eval_episodes": 100,
                     "optimizer": {"adam": {"learning_rate": 3e-3}}},
    })


def _program(path):
    return compile_program(load_spec(path), strategy=create_strategy("one_device"), jit_compile=False)


def test_omniglot_split_holds_out_characters(tmp_path, omniglot_zips):
    program = _program(_spec(tmp_path, omniglot_zips, "protonet"))
    sampler = program.sampler
    assert len(sampler.class_names) == 292  # 136 + 156 characters in the two small zips
    train, test = (set(sampler.splits[s]["base_classes"]) for s in ("train", "test"))
    assert not train & test and abs(len(test) - 0.2 * 292) <= 1
    assert len(sampler.splits["test"]["classes"]) == 4 * len(test)
    batch = sampler.sample("test", tf.constant(0, tf.int64), 2)
    assert batch["support_x"].shape == (2, 5, 28, 28, 1) and batch["query_x"].shape == (2, 25, 28, 28, 1)
    strokes = batch["support_x"].numpy()
    assert 0.0 < strokes.mean() < 0.3  # inverted: few bright stroke pixels on black


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["protonet", "maml"])
def test_omniglot_5way_1shot_improves_on_held_out_characters(tmp_path, omniglot_zips, algorithm):
    program = _program(_spec(tmp_path, omniglot_zips, algorithm))
    before = program.evaluate_episodes("test", 60)["curve"][-1]["accuracy"]["mean"]
    for _ in range(60):
        program.train_step()
    after = program.evaluate_episodes("test", 60)["curve"][-1]["accuracy"]["mean"]
    assert after > before + 0.05, (before, after)
    # chance is 0.2; 60 meta-iterations take protonet past 0.5, MAML (slower to start) past 0.28
    assert after > (0.5 if algorithm == "protonet" else 0.28)
