"""The vectorised meta-batch computes exactly what a per-task loop computes, second order included."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from polytask.spec.registry import ALGORITHMS  # noqa: E402
from polytask.compiler.meta.architecture import build_architecture  # noqa: E402
from polytask.compiler.meta.functional import FunctionalModel, initial_values, tile_params  # noqa: E402
from polytask.compiler.meta.losses import TaskLoss  # noqa: E402
from polytask.compiler.meta.plan import batch_norm_steps  # noqa: E402
import polytask.spec.models  # noqa: E402,F401  (completes the structure models)
from polytask.compiler.sharing.meta import MetaStructure  # noqa: E402

from meta_helpers import DENSE_MODEL, SMALL_CONV  # noqa: E402


def _structure(algorithm, model, steps=2, lr=0.05, **extra):
    return MetaStructure.model_validate({"sharing": "meta", "algorithm": algorithm, "model": model,
                                         "inner": {"steps": steps, "learning_rate": lr}, **extra})


def _sine_batch(tasks=5, shots=10, seed=1):
    rng = np.random.default_rng(seed)
    amp = rng.uniform(0.1, 5, (tasks, 1, 1))
    phase = rng.uniform(0, np.pi, (tasks, 1, 1))
    x = rng.uniform(-5, 5, (tasks, 2 * shots, 1))
    y = amp * np.sin(x - phase)
    c = lambda a: tf.constant(a, tf.float32)  # noqa: E731
    return {"support_x": c(x[:, :shots]), "support_y": c(y[:, :shots]),
            "query_x": c(x[:, shots:]), "query_y": c(y[:, shots:])}


def _mlp(params, x):
    """The 1-40-40-1 relu network written out by hand (the reference, no task axis)."""
    h = tf.nn.relu(x @ params[0] + params[1])
    h = tf.nn.relu(h @ params[2] + params[3])
    return h @ params[4] + params[5]


def _reference_maml(theta_list, batch, steps, lr, second_order):
    """MAML the way it is usually written: a Python loop over tasks, nested tapes."""
    with tf.GradientTape() as outer:
        outer.watch(theta_list)
        total = 0.0
        for t in range(batch["support_x"].shape[0]):
            fast = list(theta_list)
            for _ in range(steps):
                with tf.GradientTape() as inner:
                    inner.watch(fast)
                    loss = tf.reduce_mean(tf.square(_mlp(fast, batch["support_x"][t]) - batch["support_y"][t]))
                grads = inner.gradient(loss, fast)
                if not second_order:
                    grads = [tf.stop_gradient(g) for g in grads]
                fast = [w - lr * g for w, g in zip(fast, grads)]
            total += tf.reduce_mean(tf.square(_mlp(fast, batch["query_x"][t]) - batch["query_y"][t]))
    return total, outer.gradient(total, theta_list)


def _setup(algorithm, model=DENSE_MODEL, input_shape=(1,), out=1, kind="regression", loss="mse", **kw):
    structure = _structure(algorithm, model, **kw)
    arch = build_architecture(structure.model, input_shape, out, batch_norm_steps=batch_norm_steps(structure))
    fmodel = FunctionalModel(arch)
    algo = ALGORITHMS.get(algorithm).build(fmodel, structure, TaskLoss(loss, kind), None)
    return arch, fmodel, algo, initial_values(arch, seed=3)


@pytest.mark.parametrize("algorithm,second_order", [("maml", True), ("fomaml", False)])
def test_meta_gradient_matches_per_task_reference(algorithm, second_order):
    arch, _, algo, theta = _setup(algorithm, steps=2, lr=0.05)
    batch = _sine_batch()
    grads, _, metrics = algo.meta_gradients(theta, {}, batch)
    names = [p.name for p in arch.params]
    ref_total, ref_grads = _reference_maml([theta[n] for n in names], batch, 2, 0.05, second_order)
    np.testing.assert_allclose(float(tf.reduce_sum(metrics["loss"])), float(ref_total), rtol=1e-5)
    for name, ref in zip(names, ref_grads):
        np.testing.assert_allclose(grads[name].numpy(), ref.numpy(), rtol=2e-4, atol=2e-5, err_msg=name)


def test_second_order_terms_are_present_and_correct():
    """MAML's meta-gradient differs from FOMAML's, and matches finite differences of the meta-loss."""
    arch, _, maml, theta = _setup("maml", steps=1, lr=0.05)
    _, _, fomaml, _ = _setup("fomaml", steps=1, lr=0.05)
    batch = _sine_batch(tasks=3)
    g2, _, _ = maml.meta_gradients(theta, {}, batch)
    g1, _, _ = fomaml.meta_gradients(theta, {}, batch)
    difference = sum(float(tf.reduce_sum(tf.abs(g2[n] - g1[n]))) for n in g2)
    size = sum(float(tf.reduce_sum(tf.abs(g2[n]))) for n in g2)
    assert difference > 1e-3 * size  # the Hessian term is not silently dropped

    # Directional finite difference of the (float64) meta-loss along a random direction.
    theta64 = {k: tf.cast(v, tf.float64) for k, v in theta.items()}
    batch64 = {k: tf.cast(v, tf.float64) for k, v in batch.items()}
    rng = np.random.default_rng(0)
    direction = {k: tf.constant(rng.normal(size=v.shape), tf.float64) for k, v in theta64.items()}
    norm = np.sqrt(sum(float(tf.reduce_sum(d * d)) for d in direction.values()))
    direction = {k: d / norm for k, d in direction.items()}

    def meta_loss(params):
        return float(tf.reduce_sum(maml.meta_loss(params, {}, batch64)["loss"]))

    eps = 1e-5
    plus = meta_loss({k: v + eps * direction[k] for k, v in theta64.items()})
    minus = meta_loss({k: v - eps * direction[k] for k, v in theta64.items()})
    numeric = (plus - minus) / (2 * eps)
    g64, _, _ = maml.meta_gradients(theta64, {}, batch64)
    analytic = sum(float(tf.reduce_sum(g64[k] * direction[k])) for k in direction)
    first_order = sum(float(tf.reduce_sum(tf.cast(g1[k], tf.float64) * direction[k])) for k in direction)
    assert analytic == pytest.approx(numeric, rel=1e-4, abs=1e-6)
    assert abs(first_order - numeric) > 10 * abs(analytic - numeric)


def test_conv_batch_norm_tasks_are_independent():
    """Folding tasks into channels (grouped conv, per-task batch norm) equals running each task alone."""
    arch, fmodel, algo, theta = _setup("maml", model=SMALL_CONV, input_shape=(28, 28, 1), out=3,
                                       kind="classification", loss="cross_entropy", steps=1, lr=0.1)
    rng = np.random.default_rng(0)
    tasks = 3
    batch = {"support_x": tf.constant(rng.random((tasks, 6, 28, 28, 1)), tf.float32),
             "support_y": tf.constant(np.tile(np.arange(3), (tasks, 2)), tf.int64),
             "query_x": tf.constant(rng.random((tasks, 9, 28, 28, 1)), tf.float32),
             "query_y": tf.constant(np.tile(np.arange(3), (tasks, 3)), tf.int64)}
    # Per-task parameters differ, so a task mixing with another would show up.
    params = {k: v + tf.random.stateless_normal(tf.shape(v), [1, i]) * 0.05
              for i, (k, v) in enumerate(tile_params(theta, tasks).items())}
    together = fmodel(params, batch["query_x"]).numpy()
    for t in range(tasks):
        alone = fmodel({k: v[t:t + 1] for k, v in params.items()}, batch["query_x"][t:t + 1]).numpy()
        np.testing.assert_allclose(together[t], alone[0], rtol=1e-4, atol=1e-5)

    grads, _, _ = algo.meta_gradients(theta, {}, batch)
    summed = None
    for t in range(tasks):
        single = {k: v[t:t + 1] for k, v in batch.items()}
        g, _, _ = algo.meta_gradients(theta, {}, single)
        summed = g if summed is None else {k: summed[k] + g[k] for k in g}
    for name in grads:
        np.testing.assert_allclose(grads[name].numpy(), summed[name].numpy(), rtol=1e-3, atol=1e-5, err_msg=name)


def test_anil_adapts_only_the_head_and_metasgd_learns_rates():
    arch, _, anil, theta = _setup("anil", steps=1, lr=0.05)
    batch = _sine_batch(tasks=2)
    fast, *_ = anil.adapt(theta, {}, batch["support_x"], batch["support_y"], batch["query_x"], 1)
    for p in arch.params:
        changed = not np.allclose(fast[p.name].numpy()[0], theta[p.name].numpy())
        assert changed == p.name.startswith("output/"), p.name

    arch, _, metasgd, theta = _setup("metasgd", steps=1, lr=0.05)
    extra = metasgd.extra_variables()
    assert set(extra) == {"inner_lr/" + p.name for p in arch.params}
    _, g_extra, _ = metasgd.meta_gradients(theta, extra, batch)
    assert all(float(tf.reduce_sum(tf.abs(g))) > 0 for g in g_extra.values())


FORMS_SCRIPT = textwrap.dedent("""
    import numpy as np
    import tensorflow as tf
    import test_meta_gradients as t
    from polytask.compiler.layers import conv2d
    from meta_helpers import SMALL_CONV

    if not conv2d.grouped_gradients_supported():
        print("SKIP: this TensorFlow cannot differentiate grouped convolutions even with oneDNN on")
        raise SystemExit(0)
    arch, fmodel, algo, theta = t._setup("maml", model=SMALL_CONV, input_shape=(28, 28, 1), out=3,
                                         kind="classification", loss="cross_entropy", steps=1, lr=0.1)
    rng = np.random.default_rng(0)
    batch = {"support_x": tf.constant(rng.random((3, 6, 28, 28, 1)), tf.float32),
             "support_y": tf.constant(np.tile(np.arange(3), (3, 2)), tf.int64),
             "query_x": tf.constant(rng.random((3, 9, 28, 28, 1)), tf.float32),
             "query_y": tf.constant(np.tile(np.arange(3), (3, 3)), tf.int64)}
    params = {k: v + tf.random.stateless_normal(tf.shape(v), [1, i]) * 0.05
              for i, (k, v) in enumerate(t.tile_params(theta, 3).items())}
    results = {}
    for grouped in (True, False):
        conv2d.grouped_gradients_supported = lambda grouped=grouped: grouped
        grads, _, _ = algo.meta_gradients(theta, {}, batch)  # second order through the inner step
        results[grouped] = (fmodel(params, batch["query_x"]).numpy(), {k: v.numpy() for k, v in grads.items()})
    np.testing.assert_allclose(results[True][0], results[False][0], rtol=1e-4, atol=1e-5)
    for name in results[True][1]:
        np.testing.assert_allclose(results[True][1][name], results[False][1][name], rtol=1e-3, atol=1e-5, err_msg=name)
    print("AGREE")
""")


def test_grouped_and_per_task_convolutions_agree():
    """conv2d's functional form is one grouped convolution where TensorFlow can differentiate it
    (oneDNN, cuDNN) and one convolution per task elsewhere (TensorFlow's own CPU kernels, e.g. on
    AMD CPUs by default): both give the same outputs and second-order meta-gradients. Runs in a
    process with oneDNN turned on, where the grouped form can be differentiated on x86 CPUs."""
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS="1", TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run([sys.executable, "-c", FORMS_SCRIPT], cwd=Path(__file__).parent, env=env,
                          capture_output=True, text=True, timeout=600)
    if "SKIP" in proc.stdout:
        pytest.skip(proc.stdout.strip())
    assert proc.returncode == 0 and "AGREE" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]


def test_per_task_convolutions_with_a_run_time_task_count(monkeypatch):
    """Without grouped-convolution gradients, a task count known only at run time takes a map_fn
    over tasks; it gives the unrolled form's outputs and kernel gradients."""
    from polytask.compiler.layers import FunctionalContext, conv2d
    from polytask.spec.registry import LAYERS

    monkeypatch.setattr(conv2d, "grouped_gradients_supported", lambda: False)
    layer = LAYERS.get("conv2d")
    params = layer.Params(filters=4, kernel_size=3)
    context = FunctionalContext(folded=True, output_shape=(6, 6, 4), compute=lambda v: v)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=(5, 6, 6, 3, 2)), tf.float32)  # [B, H, W, T, C]
    kernel = tf.constant(rng.normal(size=(3, 3, 3, 2, 4)), tf.float32)  # [T, k, k, C, O]
    bias = tf.constant(rng.normal(size=(3, 4)), tf.float32)

    def run(x, kernel, bias):
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            y = layer.functional(params, {"kernel": kernel, "bias": bias}, x, context)
            loss = tf.reduce_sum(y * y)
        return y, tape.gradient(loss, kernel)

    unrolled = tf.function(run, autograph=False)(x, kernel, bias)
    mapped = tf.function(run, autograph=False, input_signature=[
        tf.TensorSpec([5, 6, 6, None, 2]), tf.TensorSpec([None, 3, 3, 2, 4]), tf.TensorSpec([None, 4])])(x, kernel, bias)
    for a, b in zip(unrolled, mapped):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)
    alone = tf.nn.conv2d(x[:, :, :, 1], kernel[1], 1, "SAME") + bias[1]  # task 1 on its own
    np.testing.assert_allclose(unrolled[0].numpy()[:, :, :, 1], alone.numpy(), rtol=1e-5, atol=1e-5)
