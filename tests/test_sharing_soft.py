"""Soft-sharing patterns (mmoe, cgc, ple, dselect_k, cross_stitch): plan counts, training with
weightings, export, and each forward pass against a NumPy reference written from its paper.

The references take the built model's weights and recompute the outputs from the papers'
equations (MMoE eq. 5-6, PLE eq. 2-5, DSelect-k eq. 3-6, cross-stitch eq. 1), so they
check the wiring (which expert feeds which gate, which representation feeds which level),
not just shapes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from multitask_support import load_program, spec_dict, write_spec
from polytask.compiler.plan import build_plan, format_plan
from polytask.spec.loader import load_spec

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
DENSE = [{"dense": {"units": 5, "activation": "relu"}}]
HEAD = [{"dense": {"units": 4, "activation": "relu"}}]
STRUCTURES = {
    "mmoe": {"sharing": "mmoe", "experts": {"count": 3, "layers": DENSE}, "head": HEAD},
    "cgc": {"sharing": "cgc", "experts": {"shared": 2, "per_task": 1, "layers": DENSE}, "head": HEAD},
    "ple": {"sharing": "ple", "levels": 3, "experts": {"shared": 1, "per_task": 2, "layers": DENSE}, "head": HEAD},
    "dselect_k": {"sharing": "dselect_k", "k": 2, "experts": {"count": 3, "layers": DENSE}, "head": HEAD},
    "cross_stitch": {"sharing": "cross_stitch", "head": HEAD,
                     "trunk": [{"dense": {"units": 6, "activation": "relu"}}, {"dropout": {"rate": 0.1}},
                               {"dense": {"units": 5, "activation": "tanh"}}, {"dense": {"units": 3}}],
                     "stages": [0, 2]},
    "ltb": {"sharing": "ltb", "branches": [2, 3], "head": HEAD,
            "trunk": [{"dense": {"units": 6, "activation": "relu"}}, {"dense": {"units": 5, "activation": "tanh"}}]},
}
PATTERNS = list(STRUCTURES) + ["mtan"]  # mtan: image inputs, from examples/mtan.yaml


def program_for(tmp_path, name, **training):
    if name == "mtan":
        import yaml

        spec = yaml.safe_load((EXAMPLES / "mtan.yaml").read_text())
        spec["training"].update(training)
        path = tmp_path / "mtan.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        return path, load_program(path)
    spec = spec_dict(**training)
    spec["structure"] = STRUCTURES[name]
    path = write_spec(tmp_path, spec)
    return path, load_program(path)


def relu(x):
    return np.maximum(x, 0.0)


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def expert_np(stack, h):
    """One dense-relu expert (DENSE) with its built weights."""
    (layer,) = stack.stack
    return relu(h @ layer.kernel.numpy() + layer.bias.numpy())


def head_np(program, x, outputs_reference):
    """Compare the net's full outputs with the reference features through each task's stacked head."""
    import tensorflow as tf

    net = program.net
    task = np.arange(len(x)) % program.num_tasks
    outputs = net(tf.constant(x), tf.constant(task, tf.int32))
    for t in range(program.num_tasks):
        group = int(program.group_of_task[t])
        row = int(net.local_index.numpy()[t])
        k0, b0, k1, b1 = [w.numpy() for w in net.heads[group].head_weights(row)]
        expected = relu(outputs_reference[t] @ k0 + b0) @ k1 + b1
        rows = task == t
        np.testing.assert_allclose(outputs[group].numpy()[rows], expected[rows], rtol=1e-4, atol=1e-5)


def standardized(program, x):
    return (x - program.data.mean) / program.data.std


def randomize_gates(net, scale=1.0, seed=0):
    """Gate weights from a wider distribution, so the references see non-uniform mixtures
    (and DSelect-k's smooth step both saturated and in its cubic part)."""
    rng = np.random.default_rng(seed)
    from polytask.compiler.multitask.experts import Branching, CrossStitchUnit, Gate

    for layer in net._flatten_layers():
        if isinstance(layer, Gate):
            for w in layer.trainable_weights:
                w.assign(rng.normal(0, scale, w.shape).astype(np.float32))
        if isinstance(layer, Branching):
            for w in layer.logits:
                w.assign(rng.normal(0, scale, w.shape).astype(np.float32))
        if isinstance(layer, CrossStitchUnit):
            layer.alpha.assign(rng.normal(0.5, 0.5, layer.alpha.shape).astype(np.float32))


@pytest.fixture
def x():
    return np.random.default_rng(1).normal(size=(12, 6)).astype(np.float32)


# --------------------------------------------------------------------------- plan and examples


@pytest.mark.parametrize("name", PATTERNS)
def test_plan_counts_equal_the_built_model(tmp_path, name):
    path, program = program_for(tmp_path, name)
    plan = build_plan(load_spec(path))
    assert plan.totals == program.parameter_counts()
    assert sum(g.params for g in plan.groups) == sum(int(np.prod(v.shape)) for v in program.net.weights)
    # the groups used by several tasks are exactly what gradient surgery treats as shared
    shared_plan = sum(g.params for g in plan.groups if len(g.tasks) > 1)
    assert plan.totals["shared"] == shared_plan
    trainable_shared = sum(int(np.prod(v.shape)) for v in program.net.shared_variables())
    assert trainable_shared == shared_plan - sum(
        int(np.prod(w.shape)) for layer in program.net.shared_layers() for w in layer.non_trainable_weights)
    assert "parameter groups:" in format_plan(plan)


def test_ple_plan_says_which_tasks_use_each_level():
    from polytask.compiler.sharing._experts import extraction_users

    users = extraction_users(3, ["a", "b"])
    assert users["level1/experts[a]"] == ["a", "b"] and users["level1/gate[a]"] == ["a", "b"]
    assert users["level2/experts[a]"] == ["a", "b"] and users["level2/gate[a]"] == ["a"]
    assert users["level3/experts[a]"] == ["a"] and "level3/shared_gate" not in users


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_example_spec_checks_and_trains_a_few_steps(tmp_path, name):
    from polytask.runtime.train import train_spec

    loaded = load_spec(EXAMPLES / f"{name}.yaml")
    assert loaded.spec.structure.sharing == name
    report = train_spec(loaded, tmp_path / "run", steps=3, quiet=True)
    assert report["steps"] == 3 and np.isfinite(report["metrics"]["test"]["loss"])


# --------------------------------------------------------------------------- training and export


def _pattern_weighting_pairs():
    """Every soft pattern x every registered weighting. CI trains a covering subset (each
    weighting on one pattern, in turn, so each pattern meets three or four of them); the whole
    product is `pytest -m exhaustive tests/test_sharing_soft.py`."""
    from polytask.spec.registry import WEIGHTINGS

    weightings = sorted(WEIGHTINGS.names())
    for i, weighting in enumerate(weightings):
        for j, name in enumerate(PATTERNS):
            marks = [pytest.mark.slow] + ([] if j == i % len(PATTERNS) else [pytest.mark.exhaustive])
            yield pytest.param(name, weighting, marks=marks, id=f"{name}-{weighting}")


@pytest.mark.parametrize("name,weighting", list(_pattern_weighting_pairs()))
def test_trains_with_weightings(tmp_path, name, weighting):
    from polytask.spec.loader import SpecError
    from polytask.spec.registry import WEIGHTINGS

    transform = WEIGHTINGS.get(weighting)
    if transform.gradient_space(transform.default_params()) == "representation":
        # soft patterns have no single shared representation: GradDrop is refused, with a hint
        with pytest.raises(SpecError, match=r"PT210.*(?s:.*)pick a weighting that works on the shared"):
            program_for(tmp_path, name, weighting=[weighting])
        return
    _, program = program_for(tmp_path, name, weighting=[weighting])
    before = [v.numpy().copy() for v in program.net.shared_variables()]
    values = [program.train_step() for _ in range(3)]
    assert all(np.isfinite(v["loss"]) for v in values)
    moved = [not np.allclose(b, v.numpy()) for b, v in zip(before, program.net.shared_variables())]
    assert any(moved)  # the shared experts/columns learn


@pytest.mark.slow
@pytest.mark.parametrize("name", PATTERNS)
def test_exports_one_signature_per_task(tmp_path, name):
    import tensorflow as tf

    _, program = program_for(tmp_path, name)
    x = program.data.splits["test"].task_inputs(0)[:12]
    program.train_step()
    program.export(str(tmp_path / "saved"))
    model = tf.saved_model.load(str(tmp_path / "saved"))
    assert set(model.signatures) == set(program.tasks)
    for i, task in enumerate(program.tasks):
        served = model.signatures[task](x=tf.constant(x))
        direct = program.predict(i, x)
        for key, value in direct.items():
            np.testing.assert_allclose(served[key].numpy(), value, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- NumPy references


def test_mmoe_matches_the_paper(tmp_path, x):
    _, program = program_for(tmp_path, "mmoe")
    net = program.net
    randomize_gates(net)
    h = standardized(program, x)
    experts = np.stack([expert_np(e, h) for e in net.experts], axis=1)  # [B, E, d]
    per_task = [np.einsum("be,bed->bd", softmax(h @ g.kernel.numpy()), experts) for g in net.gates]
    head_np(program, x, per_task)


def extraction_np(net, h):
    """PLE (Tang et al. 2020, eq. 2-5): per level, task gates over [shared, own] and a shared gate
    over [shared, every task's] below the last level; returns each task's last representation."""
    reps, shared_rep = [h] * net.num_tasks, h
    for j in range(net.levels):
        shared, experts, gates, shared_gate = net.module(j)
        s_out = [expert_np(e, shared_rep) for e in shared]
        t_out = [[expert_np(e, reps[t]) for e in experts[t]] for t in range(net.num_tasks)]
        new = []
        for t in range(net.num_tasks):
            g = softmax(reps[t] @ gates[t].kernel.numpy())
            new.append(np.einsum("be,ebd->bd", g, np.stack(s_out + t_out[t])))
        if shared_gate is not None:
            g = softmax(shared_rep @ shared_gate.kernel.numpy())
            shared_rep = np.einsum("be,ebd->bd", g, np.stack(s_out + [o for outs in t_out for o in outs]))
        reps = new
    return reps


@pytest.mark.parametrize("name", ["cgc", "ple"])
def test_cgc_and_ple_match_the_paper(tmp_path, x, name):
    _, program = program_for(tmp_path, name)
    randomize_gates(program.net)
    assert program.net.levels == (1 if name == "cgc" else 3)
    head_np(program, x, extraction_np(program.net, standardized(program, x)))


def dselect_np(net, h, t, gamma):
    """DSelect-k (Hazimeh et al. 2021): smooth step (eq. 3), selectors r(z_i) (eq. 4), q (eq. 6)."""
    n, k = net.count, net.k
    m = int(np.ceil(np.log2(n)))
    codes = np.array([[int(c) for c in np.binary_repr(j, width=m)] for j in range(n)])
    zg, ag = net.z_gates[t], net.alpha_gates[t]
    z = (h @ zg.kernel.numpy() + zg.bias.numpy()).reshape(len(h), k, m)
    alpha = softmax(h @ ag.kernel.numpy() + ag.bias.numpy())

    def step(v):
        return np.where(v <= -gamma / 2, 0.0, np.where(v >= gamma / 2, 1.0,
                        -2 / gamma ** 3 * v ** 3 + 3 / (2 * gamma) * v + 0.5))

    s = step(z)
    r = np.ones((len(h), k, n))
    for j in range(n):
        for bit in range(m):
            r[:, :, j] *= s[:, :, bit] if codes[j, bit] else 1 - s[:, :, bit]
    return r, alpha


def test_dselect_k_matches_the_paper(tmp_path, x):
    import tensorflow as tf

    _, program = program_for(tmp_path, "dselect_k")
    net = program.net
    randomize_gates(net, scale=0.6)
    h = standardized(program, x)
    experts = np.stack([expert_np(e, h) for e in net.experts], axis=1)
    per_task, rs = [], []
    for t in range(program.num_tasks):
        r, alpha = dselect_np(net, h, t, net.gamma)
        q = np.einsum("bk,bkn->bn", alpha, r)
        per_task.append(np.einsum("bn,bnd->bd", q, experts))
        rs.append(r)
    head_np(program, x, per_task)
    # smooth step covers both its flat and cubic parts here (else the test would not see the cubic)
    z = h @ net.z_gates[0].kernel.numpy() + net.z_gates[0].bias.numpy()
    assert (np.abs(z) < net.gamma / 2).any() and (np.abs(z) >= net.gamma / 2).any()
    # the regulariser: entropy of each row's own task's selectors, and (3 experts is not a power
    # of 2) the penalty on selector mass outside the experts
    task = np.arange(len(x)) % program.num_tasks
    r_own = np.stack([rs[t][b] for b, t in enumerate(task)])
    expected = -net.entropy * np.sum(r_own * np.log(r_own + 1e-6)) + np.sum(1.0 / np.maximum(r_own.sum(-1), 1e-6))
    got = float(net.auxiliary_loss(tf.constant(x), tf.constant(task, tf.int32)))
    assert np.isfinite(got)
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_cross_stitch_matches_the_paper(tmp_path, x):
    _, program = program_for(tmp_path, "cross_stitch")
    net = program.net
    T = program.num_tasks
    init = net.units[0].alpha.numpy()
    assert np.allclose(np.diag(init), 0.9) and np.allclose(init[~np.eye(T, dtype=bool)], 0.1 / (T - 1))
    randomize_gates(net)
    acts = ["relu", None, "tanh", "linear"]
    hs = [standardized(program, x)] * T
    units = dict(zip(net.stages, net.units))
    for i, act in enumerate(acts):
        new = []
        for t in range(T):
            (layer,) = net.column_layer(t, i).stack
            if act is None:  # dropout: identity at inference
                new.append(hs[t])
                continue
            y = hs[t] @ layer.kernel.numpy() + layer.bias.numpy()
            new.append({"relu": relu, "tanh": np.tanh, "linear": lambda v: v}[act](y))
        hs = new
        if i in units:  # eq. 1: x~_t = sum_s alpha[t, s] x_s
            alpha = units[i].alpha.numpy()
            hs = [sum(alpha[t, s] * hs[s] for s in range(T)) for t in range(T)]
    head_np(program, x, hs)


def test_cross_stitch_default_stages_follow_the_layers_with_weights():
    from polytask.compiler.sharing.cross_stitch import CrossStitchStructure, stitch_stages
    from polytask.spec.models import Spec  # noqa: F401  (completes the structure models)
    from polytask.spec.registry import SHARING

    params = SHARING.get("cross_stitch").Params.model_validate(
        {"sharing": "cross_stitch", "trunk": STRUCTURES["cross_stitch"]["trunk"]})
    assert isinstance(params, CrossStitchStructure)
    assert stitch_stages(params, (6,)) == [0, 2, 3]


def test_mtan_matches_the_paper(tmp_path):
    """Liu et al. 2019, sec. 3.1: a_j = g_j([u_j ; f_{j-1}(a^_{j-1})]), a^_j = a_j * p_j, with
    g = sigmoid(BN(conv1x1(relu(BN(conv1x1(.)))))) per task; the shared trunk convs and f
    run through their Keras layers, the attention arithmetic in NumPy."""
    import tensorflow as tf

    _, program = program_for(tmp_path, "mtan")
    net = program.net
    rng = np.random.default_rng(0)
    for stack in net.masks:  # non-trivial batch-norm statistics, so inference-mode BN is exercised
        for layer in stack.stack:
            if isinstance(layer, tf.keras.layers.BatchNormalization):
                layer.moving_mean.assign(rng.normal(0, 0.3, layer.moving_mean.shape).astype(np.float32))
                layer.moving_variance.assign(rng.uniform(0.5, 2, layer.moving_variance.shape).astype(np.float32))
                layer.gamma.assign(rng.normal(1, 0.3, layer.gamma.shape).astype(np.float32))
    x = program.data.splits["test"].task_inputs(0)[:12]
    h = standardized(program, x).astype(np.float32)

    def g_np(stack, v):
        conv1, bn1, _, conv2, bn2, _ = stack.stack

        def bn(layer, y):
            return (layer.gamma.numpy() * (y - layer.moving_mean.numpy())
                    / np.sqrt(layer.moving_variance.numpy() + layer.epsilon) + layer.beta.numpy())

        y = relu(bn(bn1, v @ conv1.kernel.numpy()[0, 0] + conv1.bias.numpy()))
        return 1 / (1 + np.exp(-bn(bn2, y @ conv2.kernel.numpy()[0, 0] + conv2.bias.numpy())))

    last = net.stages[-1]
    u, p, cur = [], [], tf.constant(h)
    for i, layer in enumerate(net.trunk[:last + 1]):
        if i in net.stages:
            u.append(cur.numpy())
        cur = layer(cur)
        if i in net.stages:
            p.append(cur.numpy())
    per_task = []
    for t in range(program.num_tasks):
        a = None
        for j in range(len(net.stages)):
            inputs = u[j] if a is None else np.concatenate(
                [u[j], net.blocks[j - 1](tf.constant(a), training=False).numpy()], axis=-1)
            a = g_np(net.mask(j, t), inputs) * p[j]
        rest = tf.constant(a.astype(np.float32))
        for layer in net.trunk[last + 1:]:
            rest = layer(rest)
        per_task.append(rest.numpy())
    head_np(program, x, per_task)


def test_ltb_infers_through_the_argmax_tree_and_reports_it(tmp_path, x):
    """Guo et al. 2020: at inference each node reads its argmax parent, each head its argmax node."""
    from polytask.cli.train import summary_text

    _, program = program_for(tmp_path, "ltb")
    net = program.net
    randomize_gates(net, seed=3)
    h = standardized(program, x)
    acts = [relu, np.tanh]

    def node_np(l, k, v):
        (layer,) = net.node(l, k).stack
        return acts[l](v @ layer.kernel.numpy() + layer.bias.numpy())

    parents = np.argmax(net.branching.logits[0].numpy(), axis=-1)
    leaf = np.argmax(net.task_branching.logits[0].numpy(), axis=-1)
    layer0 = [node_np(0, k, h) for k in range(2)]
    layer1 = [node_np(1, k, layer0[parents[k]]) for k in range(3)]
    head_np(program, x, [layer1[leaf[t]] for t in range(program.num_tasks)])
    report = program.report()["learned_sharing"]
    for t, name in enumerate(program.tasks):
        assert report["paths"][name] == [int(parents[leaf[t]]), int(leaf[t])]
    assert "discovered tree" in summary_text({**program.report(), "steps": 1, "wall_time_seconds": 1.0,
                                              "name": "ltb"}, tmp_path)


def test_ltb_training_samples_one_hot_parents_with_gradients(tmp_path):
    """Straight-through Gumbel-softmax: a one-hot choice forward, softmax gradients backward."""
    import tensorflow as tf

    _, program = program_for(tmp_path, "ltb")
    branching = program.net.branching
    with tf.GradientTape() as tape:
        z = branching.choose(0, training=True)
        loss = tf.reduce_sum(z * tf.constant(np.arange(6, dtype=np.float32).reshape(3, 2)))
    assert sorted(np.unique(z.numpy()).tolist()) == [0.0, 1.0] and np.allclose(z.numpy().sum(-1), 1)
    (grad,) = tape.gradient(loss, [branching.logits[0]])
    assert np.abs(grad.numpy()).sum() > 0


def test_ltb_branches_as_one_number_and_more_nodes_than_tasks(tmp_path):
    from polytask.spec.checker import check_file

    spec = spec_dict()
    spec["structure"] = {**STRUCTURES["ltb"], "branches": 2}
    plan = build_plan(load_spec(write_spec(tmp_path, spec)))
    assert [g.note.split(" node")[0] for g in plan.groups if g.name.startswith("trunk[")] == ["2", "2"]
    spec["structure"]["branches"] = 9
    path = write_spec(tmp_path, spec)
    (warning,) = [d for d in check_file(path).diagnostics if d.code == "PT215"]
    assert "9 nodes in a layer for 3 tasks" in warning.message and warning.line == yaml_line(path, "branches")


def yaml_line(path, key: str) -> int:
    return next(i for i, line in enumerate(Path(path).read_text().splitlines(), 1) if line.strip().startswith(key))
