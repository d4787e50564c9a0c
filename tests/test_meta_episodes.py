"""Task families: episode shapes and labels, reproducibility from the seed, no class leakage."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from polytask.compiler.meta.families import get_family  # noqa: E402
from polytask.compiler.meta.plan import meta_plan  # noqa: E402
from polytask.errors import DataError, PolytaskError  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

from meta_helpers import class_spec, sinusoid_spec, write_image_classes, write_spec  # noqa: E402


def _sampler(path, seed=None):
    loaded = load_spec(path)
    family = loaded.spec.family
    return get_family(family.source).build(family, loaded, seed=loaded.spec.seed if seed is None else seed)


def test_sinusoid_episodes_shapes_ranges_and_reproducibility(tmp_path):
    sampler = _sampler(sinusoid_spec(tmp_path))
    batch = sampler.sample("train", tf.constant(7, tf.int64), 25)
    assert batch["support_x"].shape == (25, 10, 1) and batch["query_y"].shape == (25, 10, 1)
    x = np.concatenate([batch["support_x"], batch["query_x"]], 1)
    y = np.concatenate([batch["support_y"], batch["query_y"]], 1)
    assert x.min() >= -5 and x.max() <= 5 and np.abs(y).max() <= 5
    # every task is one sinusoid: fit A sin(x - phi) = a sin x + b cos x exactly per task
    for t in range(25):
        design = np.concatenate([np.sin(x[t]), np.cos(x[t])], 1)
        coef, residual, *_ = np.linalg.lstsq(design, y[t, :, 0], rcond=None)
        assert 0.1 - 1e-4 <= np.hypot(*coef) <= 5 + 1e-4
        assert np.allclose(design @ coef, y[t, :, 0], atol=1e-4)
    again = _sampler(sinusoid_spec(tmp_path)).sample("train", tf.constant(7, tf.int64), 25)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)
    other = sampler.sample("train", tf.constant(8, tf.int64), 25)
    test = sampler.sample("test", tf.constant(7, tf.int64), 25)
    assert not np.allclose(batch["support_y"], other["support_y"])
    assert not np.allclose(batch["support_y"], test["support_y"])
    reseeded = _sampler(sinusoid_spec(tmp_path), seed=1).sample("train", tf.constant(7, tf.int64), 25)
    assert not np.allclose(batch["support_y"], reseeded["support_y"])


@pytest.fixture(scope="module")
def glyph_folder(tmp_path_factory):
    return write_image_classes(tmp_path_factory.mktemp("glyphs"), classes=16, per_class=6)


def test_class_episodes_shapes_labels_and_reproducibility(tmp_path, glyph_folder):
    spec = class_spec(tmp_path, glyph_folder, ways=4, shots=2, queries=3, rotations=[0, 90, 180, 270])
    sampler = _sampler(spec)
    batch = sampler.sample("train", tf.constant(3, tf.int64), 5)
    assert batch["support_x"].shape == (5, 8, 28, 28, 1)
    assert batch["query_x"].shape == (5, 12, 28, 28, 1)
    assert batch["support_y"].dtype == tf.int64
    for t in range(5):
        assert sorted(np.bincount(batch["support_y"][t].numpy()).tolist()) == [2, 2, 2, 2]
        assert sorted(np.bincount(batch["query_y"][t].numpy()).tolist()) == [3, 3, 3, 3]
    x = batch["support_x"].numpy()
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.mean() < 0.5  # inverted: strokes bright on dark
    again = _sampler(spec).sample("train", tf.constant(3, tf.int64), 5)
    assert all(np.array_equal(batch[k], again[k]) for k in batch)
    assert not np.array_equal(batch["support_x"], sampler.sample("train", tf.constant(4, tf.int64), 5)["support_x"])
    # the same tasks come out of the tf.data pipeline
    first = next(iter(sampler.dataset("train", 5, start=3)))
    assert all(np.array_equal(batch[k], first[k]) for k in batch)


def test_class_split_has_no_leakage_including_rotations(tmp_path, glyph_folder):
    spec = class_spec(tmp_path, glyph_folder, rotations=[0, 90, 180, 270],
                      class_split={"train": 0.5, "validation": 0.25, "test": 0.25})
    sampler = _sampler(spec)
    base = {s: set(sampler.splits[s]["base_classes"]) for s in ("train", "validation", "test")}
    assert [len(base[s]) for s in ("train", "validation", "test")] == [8, 4, 4]
    assert not (base["train"] & base["test"]) and not (base["train"] & base["validation"])
    assert not (base["validation"] & base["test"])
    assert len(sampler.splits["test"]["classes"]) == 16  # 4 characters x 4 rotations
    # every image drawn in meta-test episodes belongs to a meta-test character (any rotation)
    test_rows = np.concatenate([sampler.splits["test"]["rows"][i][: sampler.splits["test"]["counts"][i]]
                                for i in range(len(sampler.splits["test"]["classes"]))])
    pool = sampler.images[np.unique(test_rows)]
    rotated = np.concatenate([np.rot90(pool, k, axes=(1, 2)) for k in range(4)])
    flat_pool = {r.tobytes() for r in rotated}
    batch = sampler.sample("test", tf.constant(0, tf.int64), 6)
    for image in np.concatenate([batch["support_x"], batch["query_x"]], 1).reshape(-1, 28, 28, 1):
        assert image.tobytes() in flat_pool
    # a different seed splits the characters differently
    other = _sampler(spec, seed=5)
    assert set(other.splits["test"]["base_classes"]) != base["test"]


def test_rotations_are_extra_classes(tmp_path, glyph_folder):
    spec = class_spec(tmp_path, glyph_folder, ways=2, shots=1, queries=1, rotations=[0, 90])
    sampler = _sampler(spec)
    info = sampler.splits["train"]
    assert len(info["classes"]) == 2 * len(info["base_classes"])
    assert sorted(set(info["quarter_turns"].tolist())) == [0, 1]


def test_split_too_small_for_the_episode_is_a_clear_error(tmp_path, glyph_folder):
    spec = class_spec(tmp_path, glyph_folder, ways=2, shots=1, queries=1)
    with pytest.raises(DataError, match="fewer than the 12 ways"):
        _sampler(spec).check("test", 12, 1, 1)
    spec = class_spec(tmp_path, glyph_folder, ways=2, shots=1, queries=1)
    with pytest.raises(DataError, match="only 6 images"):
        _sampler(spec).check("train", 2, 4, 4)


def test_plan_needs_no_tensorflow_and_counts_parameters(tmp_path):
    import subprocess
    import sys

    path = sinusoid_spec(tmp_path, "metasgd")
    code = ("import sys, json; from polytask.spec.loader import load_spec; "
            "from polytask.compiler.meta.plan import meta_plan; "
            f"p = meta_plan(load_spec({str(path)!r})); "
            "assert 'tensorflow' not in sys.modules; print(json.dumps(p))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    import json

    plan = json.loads(out)
    assert plan["parameters"]["model"] == 1 * 40 + 40 + 40 * 40 + 40 + 40 + 1
    assert plan["parameters"]["meta_learned_inner_learning_rates"] == plan["parameters"]["model"]
    assert plan["inner_loop"]["eval_steps"] == 1 and plan["second_order"] is True


def test_model_errors_are_user_errors(tmp_path, glyph_folder):
    bad = class_spec(tmp_path, glyph_folder, model=[{"dense": {"units": 8}}], name="bad")
    with pytest.raises(PolytaskError, match="flatten"):
        meta_plan(load_spec(bad))


@pytest.mark.parametrize("example", sorted(p.name for p in (Path(__file__).parent.parent / "examples" / "meta").glob("*.yaml")))
def test_meta_examples_plan(example):
    loaded = load_spec(Path(__file__).parent.parent / "examples" / "meta" / example, check_data=False)
    plan = meta_plan(loaded)
    assert plan["sharing"] == "meta" and plan["parameters"]["model"] > 0
