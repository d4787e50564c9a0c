"""Each loss-weighting transform does what its paper says, on tiny cases with known answers."""
from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from polytask.compiler.weighting import StepInputs, WeightingChain, WeightingContext
from polytask.spec.registry import WEIGHTINGS
from polytask.compiler.weighting.pcgrad import project_conflicting
from polytask.compiler.weighting.dwa import DwaParams
from polytask.compiler.weighting.gradnorm import GradNormParams
from polytask.compiler.weighting.static import StaticParams
from polytask.spec.models import Weighting

TASKS = ["x", "y"]


def _context(params=None, period=5):
    return WeightingContext(TASKS, np.ones(2, np.float32), params=params, period=period)


def _inputs(losses, step=0, norms=None):
    losses = tf.constant(losses, tf.float32)
    step = step if isinstance(step, tf.Tensor) else tf.constant(step, tf.int64)
    return StepInputs(losses=losses, observed=losses, present=tf.constant([True, True]), step=step,
                      grad_norms=None if norms is None else tf.constant(norms, tf.float32))


def _repeat(body, start, stop):
    @tf.function
    def run():
        for step in tf.range(start, stop, dtype=tf.int64):
            body(step)

    run()


def test_equal_keeps_the_declared_weights_and_static_replaces_them():
    base = tf.constant([2.0, 0.5])
    weights, extra = WEIGHTINGS.get("equal").weigh(None, _inputs([1.0, 1.0]), base)
    assert weights.numpy().tolist() == [2.0, 0.5] and float(extra) == 0.0
    static = WEIGHTINGS.get("static")
    state = static.init(_context(StaticParams(weights={"y": 3.0})))
    weights, _ = static.weigh(state, _inputs([1.0, 1.0]), base)
    assert weights.numpy().tolist() == [1.0, 3.0]  # x keeps its declared weight (1 in the context)


def test_uncertainty_learns_log_variance_equal_to_log_loss():
    """Kendall et al.: minimising 0.5 exp(-s) L + 0.5 s over s gives s = log L (noisy tasks down-weighted)."""
    transform = WEIGHTINGS.get("uncertainty")
    state = transform.init(_context())
    losses = [0.2, 5.0]
    @tf.function
    def descend():
        for _ in tf.range(300):
            with tf.GradientTape() as tape:
                weights, extra = transform.weigh(state, _inputs(losses), tf.ones(2))
                total = tf.reduce_sum(weights * tf.constant(losses)) + extra
            state.log_variance.assign_sub(0.5 * tape.gradient(total, state.log_variance))

    descend()
    np.testing.assert_allclose(state.log_variance.numpy(), np.log(losses), atol=1e-3)
    weights, _ = transform.weigh(state, _inputs(losses), tf.ones(2))
    assert weights.numpy()[0] > weights.numpy()[1]


def test_dwa_weights_follow_the_loss_ratio_of_the_last_two_periods():
    transform = WEIGHTINGS.get("dwa")
    temperature = 2.0
    state = transform.init(_context(DwaParams(temperature=temperature), period=5))
    # Before two periods are complete the weights are 1.
    assert transform.weigh(state, _inputs([1.0, 1.0]), tf.ones(2))[0].numpy().tolist() == [1.0, 1.0]
    step = 0
    for x_loss, y_loss in [(1.0, 1.0), (0.9, 0.5)]:  # period means: x barely falls, y halves
        for _ in range(5):
            transform.update(state, _inputs([x_loss, y_loss], step=step), tf.ones(2))
            step += 1
    weights = transform.weigh(state, _inputs([1.0, 1.0]), tf.ones(2))[0].numpy()
    ratios = np.array([0.9 / 1.0, 0.5 / 1.0])
    expected = 2 * np.exp(ratios / temperature) / np.exp(ratios / temperature).sum()
    np.testing.assert_allclose(weights, expected, rtol=1e-5)
    assert weights[0] > weights[1] and np.isclose(weights.sum(), 2.0)


def test_gradnorm_equalises_weighted_gradient_norms():
    """Equal training rates: GradNorm drives w_i * ||grad L_i|| to a common value, weights summing to T."""
    transform = WEIGHTINGS.get("gradnorm")
    state = transform.init(_context(GradNormParams(alpha=1.5, learning_rate=0.01)))
    _repeat(lambda step: transform.update(state, _inputs([1.0, 1.0], step, norms=[10.0, 1.0]), tf.ones(2)), 0, 800)
    w = state.task_weights.numpy()
    assert np.isclose(w.sum(), 2.0, atol=1e-4)
    np.testing.assert_allclose(w[0] * 10.0, w[1] * 1.0, rtol=0.05)


def test_gradnorm_gives_the_slower_task_more_weight():
    transform = WEIGHTINGS.get("gradnorm")
    state = transform.init(_context(GradNormParams(alpha=1.5, learning_rate=0.01)))
    transform.update(state, _inputs([1.0, 1.0], 0, norms=[1.0, 1.0]), tf.ones(2))  # records L(0)
    # x's loss has fallen to 20% of its start, y's only to 80%
    _repeat(lambda step: transform.update(state, _inputs([0.2, 0.8], step, norms=[1.0, 1.0]), tf.ones(2)), 1, 400)
    w = state.task_weights.numpy()
    assert w[1] > w[0] * 2


def test_pcgrad_projects_only_conflicting_gradients():
    g = tf.constant([[1.0, 0.0], [-1.0, 1.0]])
    order = tf.constant([[0, 1], [1, 0]])
    projected = project_conflicting(g, order).numpy()
    # g1.g2 = -1 < 0: g1 <- g1 - (-1/2) g2 = [0.5, 0.5]; g2 <- g2 - (-1/1) g1 = [0, 1].
    np.testing.assert_allclose(projected, [[0.5, 0.5], [0.0, 1.0]], atol=1e-6)
    for i, j in ((0, 1), (1, 0)):  # each projected gradient no longer conflicts with the other original
        assert projected[i] @ g.numpy()[j] >= -1e-6
    agreeing = tf.constant([[1.0, 0.5], [0.5, 1.0]])
    np.testing.assert_allclose(project_conflicting(agreeing, order).numpy(), agreeing.numpy())


def test_transforms_compose_in_order():
    chain = WeightingChain.create([Weighting.model_validate({"static": {"weights": {"x": 4.0}}}),
                                   Weighting.model_validate("uncertainty")], _context())
    weights, extra = chain.weigh(_inputs([1.0, 1.0]), tf.ones(2))
    np.testing.assert_allclose(weights.numpy(), [4.0 * 0.5, 1.0 * 0.5])  # static, then 0.5 exp(-0) each
    assert chain.trainable_variables() and set(chain.checkpoint_items()) == {"weighting_1_uncertainty"}


GRAMIAN = np.eye(4, dtype=np.float32) * 1.5


@pytest.mark.parametrize("solver, args", [
    ("mgda:min_norm_weights", (GRAMIAN, 250, 1e-5)),
    ("cagrad:cagrad_dual", (GRAMIAN, 0.4, 200)),
    ("nash_mtl:bargaining_weights", (GRAMIAN, np.full(4, 0.5, np.float32), 20)),
    ("upgrad:project_weights", (np.eye(4, dtype=np.float32), GRAMIAN, 100)),
])
def test_compiled_solvers_slice_only_at_constant_bounds(solver, args):
    """The XLA-compiled solvers (weighting.run_compiled) must not slice at a bound computed from
    their inputs (`x[i]` with a tensor i): XLA would take the inputs' values as compile-time
    constants and recompile the solver at every step (MGDA's did: 0.17 s a step)."""
    import importlib

    module, name = solver.split(":")
    function = getattr(importlib.import_module(f"polytask.compiler.weighting.{module}"), name)
    call_args = [tf.constant(a) if isinstance(a, np.ndarray) else a for a in args]
    graph = tf.function(function, autograph=False).get_concrete_function(*call_args).graph.as_graph_def()
    nodes = list(graph.node) + [n for f in graph.library.function for n in f.node_def]
    producers = {n.name: n.op for n in nodes}
    for node in nodes:
        if node.op == "StridedSlice":
            for bound in node.input[1:4]:
                source = bound.split(":")[0].lstrip("^")
                assert producers.get(source, "Const") == "Const", f"{name}: {node.name} slices at a computed bound ({source})"
