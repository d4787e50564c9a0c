"""Each algorithm learns: after a short run, adaptation on held-out tasks beats the initialisation."""
from __future__ import annotations

import json

import pytest

tf = pytest.importorskip("tensorflow")

from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

from meta_helpers import class_spec, sinusoid_spec, write_image_classes  # noqa: E402


def _program(path, jit_compile=False):
    # XLA compilation costs seconds per graph; the tiny test models run faster without it.
    return compile_program(load_spec(path), strategy=create_strategy("one_device"), jit_compile=jit_compile)


def _final(program, metric, episodes=60):
    return program.evaluate_episodes("test", episodes)["curve"][-1][metric]["mean"]


@pytest.mark.parametrize("algorithm", ["maml", "fomaml", "reptile", "anil", "metasgd"])
def test_sinusoid_algorithms_improve_over_their_initialisation(tmp_path, algorithm):
    extra = {"reptile": {"inner": {"steps": 3, "learning_rate": 0.02, "eval_steps": 3}},
             "anil": {"inner": {"steps": 1, "learning_rate": 0.05, "eval_steps": 3}},
             # Meta-SGD's learned rates are tuned for the training number of steps.
             "metasgd": {"inner": {"steps": 1, "learning_rate": 0.01, "eval_steps": 1}}}.get(algorithm, {})
    program = _program(sinusoid_spec(tmp_path, algorithm, steps=250, meta_batch=10,
                                     optimizer={"adam": {"learning_rate": 3e-3}}, **extra))
    before = _final(program, "mse")
    for _ in range(250):
        out = program.train_step()
    after = _final(program, "mse")
    assert after < (0.85 if algorithm == "anil" else 0.75) * before, (before, after)
    assert float(out["loss"]) > 0


@pytest.fixture(scope="module")
def toy_glyphs(tmp_path_factory):
    return write_image_classes(tmp_path_factory.mktemp("toy"), classes=8, per_class=8)


def test_maml_improves_on_held_out_image_classes(tmp_path, toy_glyphs):
    program = _program(class_spec(tmp_path, toy_glyphs, "maml", ways=3, shots=1, queries=3, steps=60))
    before = _final(program, "accuracy", 40)
    for _ in range(60):
        program.train_step()
    after = _final(program, "accuracy", 40)
    assert after > before + 0.1, (before, after)


def test_protonet_learns_its_training_episodes(tmp_path, toy_glyphs):
    # A random embedding already separates the toy glyphs of held-out classes (Omniglot
    # held-out accuracy is tested in test_meta_omniglot.py); here the episode loss must drop.
    program = _program(class_spec(tmp_path, toy_glyphs, "protonet", ways=3, shots=1, queries=3, steps=60))
    before = program.evaluate_episodes("train", 40)["curve"][-1]["loss"]["mean"]
    for _ in range(60):
        program.train_step()
    after = program.evaluate_episodes("train", 40)["curve"][-1]["loss"]["mean"]
    assert after < 0.5 * before, (before, after)


def test_runtime_trains_a_meta_spec_end_to_end(tmp_path):
    from polytask.runtime.loop import LoopSettings, fit

    path = sinusoid_spec(tmp_path, "maml", steps=40, meta_batch=5, eval_every=20, checkpoint_every=20)
    program = _program(path, jit_compile=True)
    run = tmp_path / "run"
    report = fit(program, run, LoopSettings(steps=40, eval_every=20, checkpoint_every=20, log_every=10, quiet=True))
    saved = json.loads((run / "report.json").read_text())
    meta = saved["meta_test"]
    assert meta["episodes"] == 50 and meta["inner_steps"] == 3
    assert [p["steps"] for p in meta["curve"]] == [0, 1, 2, 3]
    assert all(p["mse"]["ci95"] > 0 for p in meta["curve"])
    assert meta["curve"][-1]["mse"]["mean"] < meta["curve"][0]["mse"]["mean"]  # adaptation helps
    assert saved["meta_iterations_per_second"] > 0
    assert report["metrics"]["test"]["mse"] == pytest.approx(meta["curve"][-1]["mse"]["mean"])
    assert (run / "saved_model" / "saved_model.pb").exists()

    # The exported SavedModel adapts and predicts on its own.
    loaded = tf.saved_model.load(str(run / "saved_model"))
    batch = program.sampler.sample("test", tf.constant(0, tf.int64), 2)
    out = loaded.signatures["adapt_and_predict"](support_x=batch["support_x"], support_y=batch["support_y"],
                                                 query_x=batch["query_x"])["outputs"]
    expected = program.algorithm.predict(*program.parameters.read(), batch["support_x"], batch["support_y"],
                                         batch["query_x"])
    assert out.shape == (2, 10, 1)
    assert float(tf.reduce_max(tf.abs(out - expected))) < 1e-4

    # Resume continues from the checkpoint with the same data position.
    resumed = _program(path)
    report2 = fit(resumed, run, LoopSettings(steps=50, eval_every=100, checkpoint_every=100, quiet=True), resume=True)
    assert report2["steps"] == 50 and int(resumed.batches_drawn.numpy()) == 50
    # ... and ends with the weights of an uninterrupted 50-step run (same episodes, same updates).
    straight = _program(path, jit_compile=True)
    for _ in range(50):
        straight.train_step()
    for a, b in zip(straight.parameters.ordered(), resumed.parameters.ordered()):
        assert float(tf.reduce_max(tf.abs(a.value - b.value))) < 1e-5


def test_in_graph_episodes_and_multi_step_calls_match_the_pipeline_step_by_step(tmp_path):
    from polytask.runtime.loop import LoopSettings, fit

    path = sinusoid_spec(tmp_path, "maml", steps=20, meta_batch=5)
    chunked = _program(path)
    assert chunked.samples_in_graph and chunked.steps_per_call > 1
    # The reference: episodes from the tf.data pipeline, one step per call.
    single = _program(path)
    single.samples_in_graph, single.steps_per_call = False, 1
    outputs, ran = chunked.train_steps(7)
    assert ran == 7
    chunked.train_steps(3)
    for _ in range(10):
        last = single.train_step()
    assert int(chunked.batches_drawn.numpy()) == int(single.batches_drawn.numpy()) == 10
    for a, b in zip(chunked.parameters.ordered(), single.parameters.ordered()):
        assert float(tf.reduce_max(tf.abs(a.value - b.value))) < 1e-6
    assert float(outputs["loss"]) > 0 and float(last["loss"]) > 0

    # The loop never lets a call cross a log step.
    run = tmp_path / "run"
    fit(_program(path), run, LoopSettings(steps=20, eval_every=100, checkpoint_every=100, log_every=7, quiet=True))
    logged = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged if r["split"] == "train"] == [7, 14, 20]

    # A call stops right after the first non-finite step, so the runtime can name it.
    broken = _program(path)
    first = broken.parameters.theta_names[0]
    broken.parameters.variable(first).assign(tf.fill(broken.parameters.variable(first).shape, float("nan")))
    outputs, ran = broken.train_steps(10)
    assert ran == 1 and not tf.math.is_finite(outputs["loss"])
