"""The soft-sharing networks: mixtures of experts (mmoe, cgc/ple, dselect_k) and cross-stitch columns.

Each is a `TaskHeadsNet` (`polytask.compiler.multitask.model`): it computes every row's
representation *for the row's own task*, then the task's stacked head reads it. Where the
method mixes information across tasks (PLE's shared gates, cross-stitch units), every task's
branch is computed for every row, as in the papers, and each row keeps its own task's.

Building blocks: `LayerStack` (one expert or column: spec layers, unflattened output),
`Gate` (a linear map of the flattened input to logits) and `mix` (the gated sum of experts).
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from polytask.compiler.multitask.model import TaskHeadsNet, _flatten, build_layers, run_layers
from polytask.compiler.sharing._experts import extraction_users


class LayerStack(keras.layers.Layer):
    """One expert (or cross-stitch column stage): the spec's layers with their own weights."""

    def __init__(self, layers, prefix: str, **kwargs):
        super().__init__(name=prefix, **kwargs)
        self.stack = build_layers(layers, prefix)

    def call(self, h, training=False):
        return run_layers(self.stack, h, training)


class Gate(keras.layers.Layer):
    """`outputs` logits from the flattened input: x W (+ b), W Glorot-uniform as a Keras Dense kernel."""

    def __init__(self, outputs: int, bias: bool = False, initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.outputs, self.use_bias, self.initializer = int(outputs), bool(bias), initializer

    def build(self, input_shape):
        width = int(np.prod(input_shape[1:]))
        init = self.initializer or keras.initializers.GlorotUniform()
        self.kernel = self.add_weight(shape=(width, self.outputs), name="kernel", initializer=init)
        self.bias = self.add_weight(shape=(self.outputs,), name="bias", initializer=init) if self.use_bias else None

    def call(self, h):
        logits = tf.matmul(_flatten(h), self.kernel)
        return logits + self.bias if self.bias is not None else logits


def mix(weights, experts):
    """sum_e weights[b, e] * experts[e][b, ...] for a list of expert outputs of one shape."""
    stacked = tf.stack(experts, axis=1)  # [B, E, ...]
    shape = tf.concat([tf.shape(weights), tf.ones([len(stacked.shape) - 2], tf.int32)], 0)
    return tf.reduce_sum(tf.reshape(weights, shape) * stacked, axis=1)


def own(per_task, task):
    """Row b of per_task[task[b]] for a list of per-task tensors of one shape."""
    return tf.gather(tf.stack(per_task, axis=1), task, axis=1, batch_dims=1)


class MMoENet(TaskHeadsNet):
    """Shared experts, task t's softmax gate g_t(x) = softmax(W_t x), tower h_t (Ma et al. 2018)."""

    def __init__(self, layers, count: int, head, groups, num_tasks: int, mean, std, **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="mmoe", **kwargs)
        self.experts = [LayerStack(layers, f"expert_{e}") for e in range(count)]
        self.gates = [Gate(count, name=f"gate_{t}") for t in range(num_tasks)]

    def shared_layers(self):
        return list(self.experts)

    def gate_weights(self, x):
        """[B, T, E]: every task's gate on every row."""
        return tf.stack([tf.nn.softmax(gate(x), axis=-1) for gate in self.gates], axis=1)

    def features(self, x, task, training):
        experts = [e(x, training=training) for e in self.experts]
        weights = tf.gather(self.gate_weights(x), task, axis=1, batch_dims=1)
        return mix(weights, experts)


class ExtractionNet(TaskHeadsNet):
    """PLE's extraction networks (CGC when `levels` is 1), Tang et al. 2020.

    Level j: task t's experts read task t's representation, the shared experts the shared
    one; task t's gate (softmax, from its own representation) mixes [shared experts, task t's
    experts]; below the last level a shared gate (from the shared representation) mixes
    [shared experts, every task's experts, in task order] into the next shared representation.
    """

    def __init__(self, layers, shared: int, per_task: int, levels: int, head, groups, num_tasks: int, mean, std,
                 **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="ple" if levels > 1 else "cgc", **kwargs)
        self.num_tasks, self.levels, self.shared_count, self.per_task = num_tasks, levels, shared, per_task
        self.shared_experts = [LayerStack(layers, f"l{j}_shared_{s}") for j in range(levels) for s in range(shared)]
        self.task_experts = [LayerStack(layers, f"l{j}_task{t}_{p}") for j in range(levels)
                             for t in range(num_tasks) for p in range(per_task)]
        self.task_gates = [Gate(shared + per_task, name=f"l{j}_gate_{t}") for j in range(levels) for t in range(num_tasks)]
        self.shared_gates = [Gate(shared + num_tasks * per_task, name=f"l{j}_shared_gate") for j in range(levels - 1)]

    def module(self, j: int):
        """Level j's (shared experts, per-task lists of experts, task gates, shared gate or None)."""
        s, p, t = self.shared_count, self.per_task, self.num_tasks
        shared = self.shared_experts[j * s:(j + 1) * s]
        experts = self.task_experts[j * t * p:(j + 1) * t * p]
        return (shared, [experts[i * p:(i + 1) * p] for i in range(t)], self.task_gates[j * t:(j + 1) * t],
                self.shared_gates[j] if j < self.levels - 1 else None)

    def shared_layers(self):
        users = extraction_users(self.levels, list(range(self.num_tasks)))
        out = []
        for j in range(self.levels):
            shared, experts, gates, shared_gate = self.module(j)
            out += shared + ([shared_gate] if shared_gate is not None else [])
            for t in range(self.num_tasks):
                if len(users[f"level{j + 1}/experts[{t}]"]) > 1:
                    out += experts[t]
                if len(users[f"level{j + 1}/gate[{t}]"]) > 1:
                    out.append(gates[t])
        return out

    def representations(self, x, training):
        """Every task's last-level representation of every row (a list of T tensors)."""
        reps, shared_rep = [x] * self.num_tasks, x
        for j in range(self.levels):
            shared, experts, gates, shared_gate = self.module(j)
            shared_out = [e(shared_rep, training=training) for e in shared]
            task_out = [[e(reps[t], training=training) for e in experts[t]] for t in range(self.num_tasks)]
            new = [mix(tf.nn.softmax(gates[t](reps[t]), axis=-1), shared_out + task_out[t])
                   for t in range(self.num_tasks)]
            if shared_gate is not None:
                every = shared_out + [o for outs in task_out for o in outs]
                shared_rep = mix(tf.nn.softmax(shared_gate(shared_rep), axis=-1), every)
            reps = new
        return reps

    def features(self, x, task, training):
        return own(self.representations(x, training), task)


def smooth_step(t, gamma: float):
    """Hazimeh et al. 2021, eq. 3: 0 below -gamma/2, 1 above gamma/2, a cubic in between."""
    cubic = -2.0 / gamma ** 3 * t ** 3 + 3.0 / (2.0 * gamma) * t + 0.5
    return tf.where(t <= -gamma / 2, tf.zeros_like(t), tf.where(t >= gamma / 2, tf.ones_like(t), cubic))


def binary_codes(count: int) -> np.ndarray:
    """[count, m] bits (most significant first) of expert indexes, m = ceil(log2 count)."""
    width = max(1, math.ceil(math.log2(count))) if count > 1 else 0
    return np.array([[int(b) for b in np.binary_repr(i, width=width)] if width else [] for i in range(count)],
                    np.float32).reshape(count, width)


class DSelectKNet(TaskHeadsNet):
    """Shared experts with a per-task, per-example DSelect-k gate (Hazimeh et al. 2021).

    Task t's gate maps x to k selectors' binary codes z_i = Z_t x + c (m = ceil(log2 n) each)
    and their weights alpha = softmax(A_t x + a); selector i's distribution over the n experts
    is r(z_i)_j = prod_l (S(z_il) if bit l of j else 1 - S(z_il)) with S the smooth step, and
    the expert weights are q = sum_i alpha_i r(z_i). Initialisation follows the official
    implementation (z's weights uniform in +-gamma/100, alpha's in +-0.05).
    """

    def __init__(self, layers, count: int, k: int, gamma: float, entropy: float, head, groups, num_tasks: int,
                 mean, std, **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="dselect_k", **kwargs)
        self.count, self.k, self.gamma, self.entropy = count, k, float(gamma), float(entropy)
        self.codes = tf.constant(binary_codes(count))
        self.bits = int(self.codes.shape[1])
        self.experts = [LayerStack(layers, f"expert_{e}") for e in range(count)]
        z_init = keras.initializers.RandomUniform(-self.gamma / 100, self.gamma / 100)
        a_init = keras.initializers.RandomUniform(-0.05, 0.05)
        self.z_gates = [Gate(k * self.bits, bias=True, initializer=z_init, name=f"z_{t}") for t in range(num_tasks)]
        self.alpha_gates = [Gate(k, bias=True, initializer=a_init, name=f"alpha_{t}") for t in range(num_tasks)]

    def shared_layers(self):
        return list(self.experts)

    def selectors(self, x, task):
        """(selector outputs r [B, k, n], selector weights alpha [B, k]) of each row's own task."""
        z = tf.gather(tf.stack([g(x) for g in self.z_gates], axis=1), task, axis=1, batch_dims=1)
        a = tf.gather(tf.stack([g(x) for g in self.alpha_gates], axis=1), task, axis=1, batch_dims=1)
        s = smooth_step(tf.reshape(z, [-1, self.k, 1, self.bits]), self.gamma)  # [B, k, 1, m]
        r = tf.reduce_prod(self.codes * s + (1.0 - self.codes) * (1.0 - s), axis=-1)  # [B, k, n]
        return r, tf.nn.softmax(a, axis=-1)

    def features(self, x, task, training):
        experts = [e(x, training=training) for e in self.experts]
        r, alpha = self.selectors(x, task)
        return mix(tf.einsum("bk,bkn->bn", alpha, r), experts)

    def auxiliary_loss(self, x, task):
        """Summed over rows: entropy * sum_i H(r(z_i)) (the paper's entropy regulariser), plus,
        when n is not a power of 2, sum_i 1 / sum_j r(z_i)_j, which pushes the selectors off the
        codes no expert has (as the official implementation does)."""
        r, _ = self.selectors(self.standardize(x), task)
        loss = -self.entropy * tf.reduce_sum(r * tf.math.log(r + 1e-6))
        if self.count != 2 ** self.bits:
            loss += tf.reduce_sum(1.0 / tf.maximum(tf.reduce_sum(r, axis=-1), 1e-6))  # finite when all mass is off
        return loss


class CrossStitchUnit(keras.layers.Layer):
    """A learned T x T mixing of the T columns' activations: x~_t = sum_s alpha[t, s] x_s."""

    def __init__(self, num_tasks: int, alpha_same: float, alpha_diff: float, **kwargs):
        super().__init__(**kwargs)
        init = np.full((num_tasks, num_tasks), alpha_diff, np.float32)
        np.fill_diagonal(init, alpha_same)
        self.alpha = self.add_weight(shape=(num_tasks, num_tasks), name="alpha",
                                     initializer=keras.initializers.Constant(init))

    def call(self, columns):
        stacked = tf.stack(columns, axis=0)  # [T, B, ...]
        return tf.unstack(tf.tensordot(self.alpha, stacked, axes=1), axis=0)


class CrossStitchNet(TaskHeadsNet):
    """One column (the trunk's layers, own weights) per task, a cross-stitch unit after each
    stage in `stages` (trunk layer positions), Misra et al. 2016."""

    def __init__(self, trunk, stages, alpha_same: float, alpha_diff: float, head, groups, num_tasks: int, mean, std,
                 **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="cross_stitch", **kwargs)
        self.num_tasks, self.depth, self.stages = num_tasks, len(trunk), list(stages)
        self.columns = [LayerStack([layer], f"column{t}_{i}") for t in range(num_tasks) for i, layer in enumerate(trunk)]
        self.units = [CrossStitchUnit(num_tasks, alpha_same, alpha_diff, name=f"cross_stitch_{i}") for i in self.stages]

    def column_layer(self, task: int, index: int):
        return self.columns[task * self.depth + index]

    def shared_layers(self):
        last = max(self.stages, default=-1)
        return list(self.units) + [self.column_layer(t, i) for t in range(self.num_tasks) for i in range(last + 1)]

    def columns_out(self, x, training):
        hs = [x] * self.num_tasks
        units = dict(zip(self.stages, self.units))
        for i in range(self.depth):
            hs = [self.column_layer(t, i)(hs[t], training=training) for t in range(self.num_tasks)]
            if i in units:
                hs = units[i](hs)
        return hs

    def features(self, x, task, training):
        return own(self.columns_out(x, training), task)


class MTANNet(TaskHeadsNet):
    """A shared conv trunk with task t's soft attention at each stage (Liu et al. 2019).

    `stages`: trunk positions of the stage convs; `masks[j]`: the layers of g_j (one copy per
    task); `blocks[j]`: the layers of the shared f_j between stage j and j+1.
    """

    def __init__(self, trunk, stages, masks, blocks, head, groups, num_tasks: int, mean, std, **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="mtan", **kwargs)
        self.num_tasks, self.stages = num_tasks, list(stages)
        self.trunk = build_layers(trunk, "trunk")
        self.masks = [LayerStack(masks[j], f"attention{j}_task{t}") for j in range(len(stages)) for t in range(num_tasks)]
        self.blocks = [LayerStack(layers, f"shared_block{j}") for j, layers in enumerate(blocks)]

    def mask(self, stage: int, task: int):
        return self.masks[stage * self.num_tasks + task]

    def shared_layers(self):
        return list(self.trunk) + list(self.blocks)

    def attended(self, x, training):
        """Every task's attended features after the trunk (a list of T tensors)."""
        h, u, p = x, [], []
        last = self.stages[-1]
        for i, layer in enumerate(self.trunk[:last + 1]):
            if i in self.stages:
                u.append(h)
            h = run_layers([layer], h, training)
            if i in self.stages:
                p.append(h)
        out = []
        for t in range(self.num_tasks):
            a = None
            for j in range(len(self.stages)):
                inputs = u[j] if a is None else tf.concat([u[j], self.blocks[j - 1](a, training=training)], axis=-1)
                a = self.mask(j, t)(inputs, training=training) * p[j]
            out.append(run_layers(self.trunk[last + 1:], a, training))
        return out

    def features(self, x, task, training):
        return own(self.attended(x, training), task)


class Branching(keras.layers.Layer):
    """Parent logits theta [children, parents] of several layers, and their Gumbel-softmax choice."""

    def __init__(self, shapes, temperature: float, hard: bool, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.temperature, self.hard = float(temperature), bool(hard)
        self.logits = [self.add_weight(shape=s, name=f"logits_{i}", initializer="zeros") for i, s in enumerate(shapes)]
        self.seed_generator = keras.random.SeedGenerator(seed)

    def choose(self, index: int, training):
        """[children, parents] weights: a Gumbel-softmax sample in training, the argmax one-hot otherwise."""
        theta = self.logits[index]
        if not training:
            return tf.one_hot(tf.argmax(theta, axis=-1), theta.shape[-1])
        u = keras.random.uniform(theta.shape, minval=1e-10, maxval=1.0, seed=self.seed_generator)
        soft = tf.nn.softmax((theta - tf.math.log(-tf.math.log(u))) / self.temperature, axis=-1)
        if not self.hard:
            return soft
        return tf.stop_gradient(tf.one_hot(tf.argmax(soft, axis=-1), theta.shape[-1]) - soft) + soft


class LTBNet(TaskHeadsNet):
    """Learning to branch (Guo et al. 2020): `counts[l]` copies of trunk layer l; each node of
    layer l > 0 and each task's head mixes its parents with Gumbel-softmax weights."""

    def __init__(self, trunk, counts, temperature: float, hard: bool, head, groups, num_tasks: int, mean, std,
                 **kwargs):
        super().__init__(head, groups, num_tasks, mean, std, name="ltb", **kwargs)
        self.counts, self.num_tasks = list(counts), num_tasks
        self.nodes = [LayerStack([layer], f"layer{l}_node{k}") for l, layer in enumerate(trunk)
                      for k in range(self.counts[l])]
        self.branching = Branching([(self.counts[l], self.counts[l - 1]) for l in range(1, len(counts))],
                                   temperature, hard, name="branching")
        self.task_branching = Branching([(num_tasks, self.counts[-1])], temperature, hard, seed=1,
                                        name="task_branching")

    def build(self, input_shape):
        """Nothing to create here: nodes build on their first call, the logits exist from __init__
        (Keras' default build would warn about the nodes not being built yet)."""

    def last_shared_kernel(self):
        """The last layer's nodes (not the branching logits): GradNorm's W."""
        for node in reversed(self.nodes):
            kernels = [w for w in node.trainable_weights if len(w.shape) >= 2]
            if kernels:
                return kernels[-1]
        return None

    def node(self, layer: int, k: int):
        return self.nodes[sum(self.counts[:layer]) + k]

    def shared_layers(self):
        return list(self.nodes) + [self.branching]

    def task_inputs(self, x, training):
        """Every task's head input (a list of T tensors)."""
        outs = [self.node(0, k)(x, training=training) for k in range(self.counts[0])]
        for l in range(1, len(self.counts)):
            z = self.branching.choose(l - 1, training)
            outs = [self.node(l, k)(mix(tf.tile(z[k][None], [tf.shape(x)[0], 1]), outs), training=training)
                    for k in range(self.counts[l])]
        z = self.task_branching.choose(0, training)
        return [mix(tf.tile(z[t][None], [tf.shape(x)[0], 1]), outs) for t in range(self.num_tasks)]

    def features(self, x, task, training):
        return own(self.task_inputs(x, training), task)

    def sharing_report(self, tasks: list) -> dict:
        """The discovered tree: each task's node at every layer (argmax parents), and which tasks share each node."""
        parents = [np.argmax(t.numpy(), axis=-1).tolist() for t in self.branching.logits]
        leaf = np.argmax(self.task_branching.logits[0].numpy(), axis=-1).tolist()
        paths = {}
        for t, name in enumerate(tasks):
            path = [leaf[t]]
            for l in range(len(self.counts) - 1, 0, -1):
                path.insert(0, parents[l - 1][path[0]])
            paths[name] = path
        summary = ["discovered tree (node per layer; tasks that share a node):"]
        for l in range(len(self.counts)):
            shared: dict = {}
            for name, path in paths.items():
                shared.setdefault(path[l], []).append(name)
            summary.append(f"  layer {l}: " + "  ".join(f"node {k}: {', '.join(v)}" for k, v in sorted(shared.items())))
        return {"kind": "discovered_tree", "parents": parents, "task_nodes": leaf, "paths": paths, "summary": summary}
