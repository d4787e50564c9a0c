"""Golden tests: each gradient method's combined update equals a NumPy reference written from
its paper's equations (tests/weighting_reference.py), on fixed random per-task gradients.

Tolerances: the TensorFlow solvers run in float32 with fixed iteration budgets, so updates
are compared with a relative tolerance of 2e-3 of the update's norm (measured worst:
see each test); closed-form methods use 1e-5.
"""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

import weighting_reference as ref
from polytask.compiler.weighting import StepInputs, WeightingContext
from polytask.spec.registry import WEIGHTINGS

SEED = 7


def _gradients(count=3, size=8, seed=0, conflict=True):
    rng = np.random.default_rng(seed)
    J = rng.normal(size=(count, size))
    if conflict:
        J[1] = -0.6 * J[0] + 0.5 * J[1]  # a conflicting pair, so the methods act
    return J.astype(np.float32)


def _transform(name, shared_sizes=(), count=3, **params):
    transform = WEIGHTINGS.get(name)
    context = WeightingContext([f"t{i}" for i in range(count)], np.ones(count, np.float32),
                               params=transform.Params(**params) if params else None, seed=SEED,
                               shared_sizes=shared_sizes)
    return transform, transform.init(context)


def _inputs(step=0, losses=(0.5, 1.0, 2.0), representation=None):
    losses = tf.constant(losses, tf.float32)
    return StepInputs(losses=losses, observed=losses, present=tf.ones([len(losses)], tf.bool),
                      step=tf.constant(step, tf.int64), representation=representation)


def _update(transform, state, J, inputs):
    return tf.reduce_sum(transform.transform_gradients(state, tf.constant(J), inputs), axis=0).numpy()


def _close(actual, expected, rtol):
    error = np.linalg.norm(actual - expected) / max(np.linalg.norm(expected), 1e-12)
    assert error < rtol, f"relative error {error:.3g} (actual {actual}, expected {expected})"


@pytest.mark.parametrize("count", [2, 3, 5])
@pytest.mark.parametrize("normalization", ["none", "l2", "loss+"])
def test_mgda_is_the_min_norm_point(count, normalization):
    J = _gradients(count, seed=count)
    losses = tuple(float(x) for x in np.linspace(0.5, 2.0, count))
    transform, state = _transform("mgda", normalization=normalization, max_iterations=2000, tolerance=1e-9)
    _close(_update(transform, state, J, _inputs(losses=losses)), ref.mgda(J, losses, normalization), 2e-3)


def test_mgda_defaults_reach_the_min_norm_point_closely():
    J = _gradients(3, seed=11)
    transform, state = _transform("mgda")
    _close(_update(transform, state, J, _inputs()), ref.mgda(J), 2e-3)


@pytest.mark.parametrize("c,rescale", [(0.5, 1), (0.2, 0), (0.8, 2)])
def test_cagrad_matches_its_dual(c, rescale):
    J = _gradients(3, seed=2)
    transform, state = _transform("cagrad", c=c, rescale=rescale)
    _close(_update(transform, state, J, _inputs()), ref.cagrad(J, c, rescale), 2e-3)


def test_cagrad_with_c_zero_is_the_mean_gradient():
    J = _gradients(3, seed=3)
    transform, state = _transform("cagrad", c=0.0, rescale=0)
    _close(_update(transform, state, J, _inputs()), J.mean(axis=0), 1e-5)


def test_nash_mtl_solves_the_bargaining_equation():
    J = _gradients(3, seed=4)
    transform, state = _transform("nash_mtl")
    d = _update(transform, state, J, _inputs())
    _close(d, ref.nash_mtl(J), 2e-3)
    # The paper's property: every task gets g_i.d = 1/a_i, and ||d||^2 = T.
    assert abs(float(d @ d) - 3.0) < 1e-2


def test_nash_mtl_warm_start_and_weight_reuse_over_steps():
    """update_weights_every: 2 -- solved at steps 0 and 2, reused at 1 and 3 with the new gradients."""
    transform, state = _transform("nash_mtl", update_weights_every=2)
    weights = None
    for step in range(4):
        J = _gradients(3, seed=20 + step)
        if step % 2 == 0:
            weights = ref.nash_mtl_weights(J)
        _close(_update(transform, state, J, _inputs(step=step)), weights @ J.astype(np.float64), 2e-3)


def test_imtl_g_has_equal_projections_on_every_task():
    J = _gradients(4, seed=5)
    transform, state = _transform("imtl", mode="gradient")
    d = _update(transform, state, J, _inputs(losses=(1.0, 1.0, 1.0, 1.0)))
    _close(d, ref.imtl_g(J), 1e-4)
    unit = J / np.linalg.norm(J, axis=1, keepdims=True)
    projections = unit @ d
    assert np.ptp(projections) < 1e-4 * np.abs(projections).max()


def test_imtl_loss_scales_descend_to_minus_log_loss():
    """IMTL-L: minimising e^s L - s over s gives s = -log L, every scaled loss 1."""
    transform, state = _transform("imtl", mode="loss")
    losses = tf.constant([0.2, 1.0, 5.0])
    for _ in range(400):
        with tf.GradientTape() as tape:
            weights, extra = transform.weigh(state, _inputs(losses=(0.2, 1.0, 5.0)), tf.ones(3))
            total = tf.reduce_sum(weights * losses) + extra
        state.scale.assign_sub(0.2 * tape.gradient(total, state.scale))
    np.testing.assert_allclose(state.scale.numpy(), -np.log([0.2, 1.0, 5.0]), atol=1e-3)
    assert not transform.uses_task_gradients(transform.Params(mode="loss"))


def test_imtl_hybrid_balances_the_gradients_of_the_scaled_losses():
    """The paper's IMTL (Alg. 1): IMTL-L scales each loss by e^{s_i}; IMTL-G then balances the
    gradients of the scaled losses, e^{s_i} g_i, and the scales train on e^{s_i} L_i - s_i."""
    J = _gradients(3, seed=9)
    transform, state = _transform("imtl")
    scales = np.array([0.3, -0.5, 1.2], np.float32)
    state.scale.assign(scales)
    inputs = _inputs(losses=(0.5, 1.0, 2.0))
    with tf.GradientTape() as tape:
        weights, extra = transform.weigh(state, inputs, tf.ones(3))
        total = tf.reduce_sum(weights * inputs.losses) + extra
    np.testing.assert_allclose(weights.numpy(), np.exp(scales), rtol=1e-6)
    np.testing.assert_allclose(tape.gradient(total, state.scale).numpy(),
                               np.exp(scales) * np.array([0.5, 1.0, 2.0]) - 1.0, rtol=1e-5)
    scaled = np.exp(scales)[:, None] * J  # the chain hands over gradients of weights_i L_i
    _close(_update(transform, state, scaled.astype(np.float32), inputs), ref.imtl_g(scaled), 1e-4)


def test_aligned_mtl_aligns_to_equal_norm_orthogonal_gradients():
    J = _gradients(3, seed=6)
    transform, state = _transform("aligned_mtl")
    _close(_update(transform, state, J, _inputs()), ref.aligned_mtl(J), 1e-3)


def test_aligned_mtl_handles_a_rank_deficient_jacobian():
    J = _gradients(3, seed=8)
    J[2] = J[0] + J[1]
    transform, state = _transform("aligned_mtl")
    _close(_update(transform, state, J, _inputs()), ref.aligned_mtl(J), 1e-3)


@pytest.mark.parametrize("seed", [9, 10])
def test_upgrad_projects_onto_the_dual_cone(seed):
    J = _gradients(3, seed=seed)
    transform, state = _transform("upgrad")
    d = _update(transform, state, J, _inputs())
    _close(d, ref.upgrad(J), 2e-3)
    assert np.all(J @ d > -1e-4 * np.linalg.norm(d) * np.linalg.norm(J, axis=1))  # conflicts with no task


def test_graddrop_keeps_one_sign_per_feature():
    rng = np.random.default_rng(12)
    T, B, d = 3, 4, 6
    J = rng.normal(size=(T, B, d)).astype(np.float32)
    h = rng.normal(size=(B, d)).astype(np.float32)
    for leak in (0.0, 0.3):
        transform, state = _transform("graddrop", leak=leak)
        step = 5
        uniform = tf.random.stateless_uniform([d], seed=tf.constant([SEED, step], tf.int64)).numpy()
        inputs = _inputs(step=step, representation=tf.constant(h))
        out = _update(transform, state, J.reshape(T, -1), inputs).reshape(B, d)
        _close(out, ref.graddrop(J.astype(np.float64), h, uniform, leak), 1e-5)


def _orders(count, step):
    return [tf.random.experimental.stateless_shuffle(tf.range(count), seed=tf.constant([SEED + i, step])).numpy()
            for i in range(count)]


@pytest.mark.parametrize("count", [3, 7])
@pytest.mark.parametrize("granularity", ["whole_model", "layer"])
def test_gradvac_over_several_steps_follows_the_ema_targets(granularity, count):
    sizes = (3, 5)
    groups = np.repeat([0, 1], sizes) if granularity == "layer" else None
    transform, state = _transform("gradvac", shared_sizes=sizes, count=count, beta=0.3, granularity=granularity)
    targets = np.zeros((count, count, 2 if granularity == "layer" else 1))
    for step in range(4):
        J = _gradients(count, seed=30 + step)
        expected, targets = ref.gradvac(J, _orders(count, step), targets, beta=0.3, groups=groups)
        _close(_update(transform, state, J, _inputs(step=step)), expected, 1e-4)
        np.testing.assert_allclose(state.targets.numpy(), targets, atol=1e-5)
    assert np.abs(targets).max() > 0.05  # the EMA moved, so later steps used non-zero targets


@pytest.mark.parametrize("name", ["mgda", "cagrad", "nash_mtl", "imtl", "aligned_mtl", "upgrad"])
def test_gramian_path_equals_the_full_gradient_path(name):
    """The step's Gramian-only path (combine(G) -> coefficients) gives the same update as the rows."""
    J = _gradients(3, seed=40)
    transform, state = _transform(name)
    rows = _update(transform, state, J, _inputs())
    _, state = _transform(name)
    coefficients = transform.combine(state, tf.constant(J @ J.T), _inputs()).numpy()
    _close(coefficients @ J, rows, 1e-4)


def test_pcgrad_vectorised_rounds_equal_the_sequential_algorithm():
    """PCGrad's surgery runs every task's k-th projection at once; the result is Alg. 1's."""
    transform = WEIGHTINGS.get("pcgrad")
    state = transform.init(WeightingContext([f"t{i}" for i in range(5)], np.ones(5, np.float32), seed=SEED))
    J = _gradients(5, seed=50)
    J[3] = -0.8 * J[2] + 0.2 * J[3]
    for step in range(3):
        _close(_update(transform, state, J, _inputs(step=step, losses=(1.0,) * 5)), ref.pcgrad(J, _orders(5, step)), 1e-5)
