"""MAML++ options (Antoniou, Edwards & Storkey, ICLR 2019) against references from the paper.

- multi-step loss (MSL): the importance vector of the paper's reference code, re-written
  here in NumPy with its per-epoch loop, and the meta-loss as that weighted sum of the query
  losses after each inner step;
- LSLR: one learned rate per parameter tensor and step; at its initial value it is MAML;
- derivative-order annealing: first order while annealing (= FOMAML's gradient), then MAML's;
- check: options an algorithm cannot use, and learned step sizes evaluated beyond training.
"""
from __future__ import annotations

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from test_meta_gradients import _setup, _sine_batch  # noqa: E402

from polytask.compiler.meta.algorithms.base import STEP_SIZES  # noqa: E402


def reference_importance(steps: int, epoch: float, msl_epochs: float) -> np.ndarray:
    """The paper's per-step loss importance vector (reference code's loop, epoch as a float)."""
    weights = np.ones(steps) / steps
    decay = 1.0 / steps / msl_epochs
    floor = 0.03 / steps
    for i in range(steps - 1):
        weights[i] = max(weights[i] - epoch * decay, floor)
    weights[-1] = min(weights[-1] + epoch * (steps - 1) * decay, 1.0 - (steps - 1) * floor)
    return weights


@pytest.mark.parametrize("iteration", [0, 10, 37, 99, 100, 250])
def test_multi_step_weights_match_the_paper(iteration):
    *_, algo, _ = _setup("maml", steps=5, inner={"steps": 5, "learning_rate": 0.05,
                                                  "multi_step_loss_iterations": 100})
    got = algo.multi_step_weights(tf.constant(iteration)).numpy()
    expected = reference_importance(5, iteration, 100) if iteration < 100 else np.eye(5)[-1]
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-7)


def test_multi_step_loss_is_the_weighted_sum_of_per_step_query_losses():
    inner = {"steps": 3, "learning_rate": 0.05, "multi_step_loss_iterations": 50}
    _, _, algo, theta = _setup("maml", steps=3, inner=inner)
    batch = _sine_batch()
    loss = algo.meta_loss(theta, {}, batch, iteration=tf.constant(20))["loss"].numpy()
    curve = algo.evaluate(theta, {}, batch, steps=3)  # query losses after 0..3 steps
    per_step = np.stack([point["loss"].numpy() for point in curve[1:]])  # [S, T]
    expected = (reference_importance(3, 20, 50)[:, None] * per_step).sum(0)
    np.testing.assert_allclose(loss, expected, rtol=2e-5)
    # without an iteration (evaluation) or after the annealing, only the last step counts
    np.testing.assert_allclose(algo.meta_loss(theta, {}, batch, iteration=tf.constant(50))["loss"].numpy(),
                               per_step[-1], rtol=2e-5)


def test_lslr_starts_as_maml_and_learns_per_step_rates():
    _, _, maml, theta = _setup("maml", steps=2)
    _, _, lslr, _ = _setup("maml", steps=2, inner={"steps": 2, "learning_rate": 0.05, "learn_step_sizes": True})
    extra = lslr.extra_variables()
    assert set(extra) == {STEP_SIZES + name for name in lslr.adapted_names()}
    assert all(v.shape == (2,) and np.allclose(v.numpy(), 0.05) for v in extra.values())
    batch = _sine_batch()
    np.testing.assert_allclose(lslr.meta_loss(theta, extra, batch)["loss"].numpy(),
                               maml.meta_loss(theta, {}, batch)["loss"].numpy(), rtol=1e-5)
    _, g_extra, _ = lslr.meta_gradients(theta, extra, batch)
    # both steps' rates get a gradient of their own (a rate for step 0 and one for step 1)
    for name, grad in g_extra.items():
        assert grad.shape == (2,) and np.all(np.abs(grad.numpy()) > 0), name
    # step 1 uses the second rate: change it and only the result after step 2 changes
    bumped = {k: v + tf.constant([0.0, 0.02]) for k, v in extra.items()}
    one_step = lslr.evaluate(theta, bumped, batch, steps=2)
    base = lslr.evaluate(theta, extra, batch, steps=2)
    np.testing.assert_allclose(one_step[1]["loss"].numpy(), base[1]["loss"].numpy(), rtol=1e-6)
    assert not np.allclose(one_step[2]["loss"].numpy(), base[2]["loss"].numpy())


def test_derivative_order_annealing_uses_first_order_gradients_while_annealing():
    _, _, fomaml, theta = _setup("fomaml", steps=2)
    _, _, maml, _ = _setup("maml", steps=2, inner={"steps": 2, "learning_rate": 0.05,
                                                    "first_order_iterations": 10})
    batch = _sine_batch()
    first, _, _ = maml.meta_gradients(theta, {}, batch, first_order=True)
    reference, _, _ = fomaml.meta_gradients(theta, {}, batch)
    second, _, _ = maml.meta_gradients(theta, {}, batch, first_order=False)
    for name in theta:
        np.testing.assert_allclose(first[name].numpy(), reference[name].numpy(), rtol=1e-5, atol=1e-7)
    assert any(not np.allclose(first[n].numpy(), second[n].numpy(), rtol=1e-3) for n in theta)


MAML_PP_SPEC = """
polytask: 1
name: sinusoid-maml-pp
seed: 0
family: {source: sinusoid, shots: 5, queries: 5}
loss: mse
structure:
  sharing: meta
  algorithm: ALGORITHM
  inner: {steps: 2, learning_rate: 0.01, multi_step_loss_iterations: 4, learn_step_sizes: true,
          first_order_iterations: 3}
  model: [{dense: {units: 16, activation: relu}}]
training:
  meta_batch: 4
  steps: 8
  optimizer: {adam: {learning_rate: 1.0e-3}}
  schedule: {kind: cosine, min_fraction: 0.1}
  eval_every: 8
  eval_episodes: 20
  checkpoint_every: 8
  log_every: 2
"""


@pytest.mark.parametrize("algorithm", ["maml", "anil"])
def test_maml_plus_plus_spec_trains(tmp_path, algorithm):
    from click.testing import CliRunner

    from polytask.cli import main

    spec = tmp_path / "spec.yaml"
    spec.write_text(MAML_PP_SPEC.replace("ALGORITHM", algorithm))
    check = CliRunner().invoke(main, ["check", str(spec)])
    assert check.exit_code == 0, check.output
    result = CliRunner().invoke(main, ["train", str(spec), "--out", str(tmp_path / "run"), "-q",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    import json

    report = json.loads(result.output[result.output.index("{"):])
    assert report["steps"] == 8 and np.isfinite(report["metrics"]["test"]["mse"])


def test_check_warns_options_an_algorithm_cannot_use(tmp_path):
    from polytask.spec.checker import check_source

    text = MAML_PP_SPEC.replace("ALGORITHM", "reptile")
    result = check_source(text, "spec.yaml")
    warnings = [d for d in result.diagnostics if d.code == "PT215"]
    assert {d.message for d in warnings} == {f"inner.{f} has no effect with reptile" for f in
                                             ("multi_step_loss_iterations", "learn_step_sizes", "first_order_iterations")}
    assert result.valid, result.diagnostics
    lslr = MAML_PP_SPEC.replace("ALGORITHM", "maml").replace("first_order_iterations: 3}",
                                                             "first_order_iterations: 3, eval_steps: 5}")
    refused = check_source(lslr, "spec.yaml")
    assert [d.code for d in refused.diagnostics if d.severity == "error"] == ["PT212"]


BN_MODEL = [{"dense": {"units": 8}}, {"batch_norm": {}}, {"activation": "relu"}]


def _bn_mlp(weights, x, stats_count, step):
    """dense(8) -> batch norm with step `step`'s gamma/beta (statistics of the first `stats_count`
    examples) -> relu -> dense(1), one task, written out by hand."""
    kernel, bias, gamma, beta, out_kernel, out_bias = weights
    h = x @ kernel + bias
    mean, variance = tf.nn.moments(h[:stats_count], axes=[0])
    h = tf.nn.relu((h - mean) / tf.sqrt(variance + 1e-3) * gamma[step] + beta[step])
    return h @ out_kernel + out_bias


def _reference_per_step_bn(weights, batch, steps, lr):
    """MAML++ BNWB as its reference code runs it: a loop over tasks; the support forward at
    inner step s and the query after update s use batch-norm set s; only the dense weights
    adapt; second order."""
    adapted = [0, 1, 4, 5]
    with tf.GradientTape() as outer:
        outer.watch(weights)
        total = 0.0
        for t in range(batch["support_x"].shape[0]):
            sx, sy, qx, qy = (batch[k][t] for k in ("support_x", "support_y", "query_x", "query_y"))
            fast = list(weights)
            for step in range(steps):
                with tf.GradientTape() as inner:
                    inner.watch([fast[i] for i in adapted])
                    loss = tf.reduce_mean(tf.square(_bn_mlp(fast, sx, sx.shape[0], step) - sy))
                grads = inner.gradient(loss, [fast[i] for i in adapted])
                for i, g in zip(adapted, grads):
                    fast[i] = fast[i] - lr * g
            joint = tf.concat([sx, qx], 0)
            query = _bn_mlp(fast, joint, sx.shape[0], steps - 1)[sx.shape[0]:]
            total += tf.reduce_mean(tf.square(query - qy))
    return total, outer.gradient(total, weights)


def test_per_step_batch_norm_matches_the_reference_loop():
    inner = {"steps": 3, "learning_rate": 0.05, "per_step_batch_norm": True}
    arch, _, algo, theta = _setup("maml", model=BN_MODEL, steps=3, inner=inner)
    names = [p.name for p in arch.params]
    assert theta["layer1_batch_norm/gamma"].shape == (3, 8) and theta["layer1_batch_norm/beta"].shape == (3, 8)
    assert "layer1_batch_norm/gamma" not in algo.adapted_names()
    # distinct per-step sets, so using the wrong step's set would show
    rng = np.random.default_rng(0)
    theta = dict(theta, **{"layer1_batch_norm/gamma": tf.constant(rng.uniform(0.5, 1.5, (3, 8)), tf.float32),
                           "layer1_batch_norm/beta": tf.constant(rng.normal(0, 0.3, (3, 8)), tf.float32)})
    batch = _sine_batch(tasks=4)
    grads, _, metrics = algo.meta_gradients(theta, {}, batch)
    total, reference = _reference_per_step_bn([theta[n] for n in names], batch, 3, 0.05)
    np.testing.assert_allclose(float(tf.reduce_sum(metrics["loss"])), float(total), rtol=1e-5)
    for name, ref in zip(names, reference):
        np.testing.assert_allclose(grads[name].numpy(), ref.numpy(), rtol=5e-4, atol=2e-5, err_msg=name)
    # every step's set is trained: the support passes of steps 0-2 and the final query use them
    assert np.all(np.abs(grads["layer1_batch_norm/gamma"].numpy()).sum(1) > 0)
    # evaluating beyond the trained steps reuses the last set (and does not fail)
    assert len(algo.evaluate(theta, {}, batch, steps=5)) == 6


def test_per_step_batch_norm_in_plan_check_and_train(tmp_path):
    from click.testing import CliRunner

    from polytask.cli import main
    from polytask.spec.checker import check_source

    spec = MAML_PP_SPEC.replace("ALGORITHM", "maml").replace(
        "model: [{dense: {units: 16, activation: relu}}]",
        "model: [{dense: {units: 16}}, {batch_norm: {}}, {activation: relu}]").replace(
        "first_order_iterations: 3}", "first_order_iterations: 3, per_step_batch_norm: true}")
    path = tmp_path / "spec.yaml"
    path.write_text(spec)
    plan = CliRunner().invoke(main, ["plan", str(path), "--format", "json"])
    assert plan.exit_code == 0, plan.output
    import json

    meta = json.loads(plan.output)
    layers = {layer["kind"]: layer["parameters"] for layer in meta["layers"]}
    assert layers["batch_norm"] == 2 * 2 * 16  # gamma and beta, one set per inner step (2)
    counts = meta["parameters"]
    assert counts["model"] - counts["adapted_in_inner_loop"] == 2 * 2 * 16
    assert meta["inner_loop"]["batch_norm_weight_sets"] == 2
    result = CliRunner().invoke(main, ["train", str(path), "--out", str(tmp_path / "run"), "-q",
                                       "--format", "json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert np.isfinite(report["metrics"]["test"]["mse"])
    assert report["parameters"]["total"] == counts["total"]
    for algorithm in ("anil", "metasgd", "reptile"):
        warnings = [d.message for d in check_source(spec.replace("algorithm: maml", f"algorithm: {algorithm}"),
                                                    "spec.yaml").diagnostics if d.code == "PT215"]
        assert f"inner.per_step_batch_norm has no effect with {algorithm}" in warnings, (algorithm, warnings)
    one_step = check_source(spec.replace("inner: {steps: 2,", "inner: {steps: 1,"), "spec.yaml")
    assert any("with inner.steps 1 there is one set" in d.message for d in one_step.diagnostics)
