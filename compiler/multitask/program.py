"""`MultiTaskProgram`: a multi-task spec (pooled, hard or soft sharing) lowered to a trainable TensorFlow program.

One training step (a `tf.function`, XLA-compiled on one replica when the spec or the
default asks for it) on a global batch of examples from mixed tasks:

    outputs  = net(x, task)                              one tensor per head group
    l_b      = loss_{task_b}(y_b, outputs[group_b])      per example, NaN labels masked to 0
    L_i      = sum_{b: task_b = i} l_b / n_i             n_i summed over replicas
    weights  = weighting chain (equal/static/uncertainty/dwa/gradnorm/...)
    loss     = sum_i weights_i L_i (+ transform terms)   gradient methods combine per-task gradients

Gradient methods get the per-task gradients of the T weighted losses without a loop over
tasks (w.r.t. the shared parameters: one batched backward pass through a hard-sharing
trunk, `task_gradients.py`, else a pfor Jacobian; or w.r.t. the shared representation for
representation-space methods), globally reduced across replicas before they are combined;
loss-only weightings take the single backward pass of the total loss.

Per-task losses are computed with segment sums over task ids, so the graph does not grow
with the number of tasks. On one replica `train_steps(n)` runs up to STEPS_PER_CALL steps
in one graph call (batches drawn with `next()` inside the graph), as Keras'
`steps_per_execution` does; the runtime ends every call on a log/eval/checkpoint boundary. Under a multi-replica strategy every replica divides by the
*global* per-task counts, so summed gradients equal the one-device gradient.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from polytask.compiler.distribute import global_batch_size, prepare_optimizer, scale_loss
from polytask.spec.registry import LOSSES, SHARING
from polytask.compiler.metrics import compute as compute_metrics
from polytask.compiler.multitask.data import MultiTaskData, sampling_rates, train_dataset
from polytask.compiler.optimizers import make_optimizer
from polytask.compiler.program import EXPORT_INFO_FILE, ExportInfo, steps_until_non_finite
from polytask.compiler.multitask.lookahead import Lookahead
from polytask.compiler.weighting import StepInputs, WeightingChain, WeightingContext
from polytask.errors import DataError

EVAL_BATCH = 4096
#: Training steps per graph call on one replica: at small models the per-call cost (function
#: dispatch, host round trip) is as large as the step itself; 50 gave 1,060 steps/s against
#: 973 for 10 on digits_hard (bench/bench_vs_keras_fit.py, docs/benchmarks.md).
STEPS_PER_CALL = 50


class MultiTaskProgram:
    """A multi-task sharing pattern: the network, optimizer, weighting chain and data, ready for `fit`."""

    def __init__(self, plan, spec, data: MultiTaskData, strategy, *, seed: int, jit_compile: Optional[bool] = None,
                 steps: Optional[int] = None):
        self.plan, self.spec, self.data, self.strategy = plan, spec, data, strategy
        self.seed = int(seed)
        self.tasks = list(plan.tasks)
        self.num_tasks = len(self.tasks)
        self.replicas = int(strategy.num_replicas_in_sync)
        self.batch_size = global_batch_size(strategy, global_batch=spec.training.batch_size)
        self.notices: list[str] = []
        train_rows = int(data.train_sizes().sum())
        if self.batch_size > train_rows >= self.replicas:
            # A larger batch only repeats rows, and a huge one would be allocated before the
            # first step (std::bad_alloc aborts the process); `check` warns about it (PT222).
            clamped = train_rows // self.replicas * self.replicas
            self.notices.append(f"training.batch_size {self.batch_size} is larger than the {train_rows} training "
                                f"examples (all tasks); using batches of {clamped}")
            self.batch_size = clamped
        self.losses = [LOSSES.get(plan.tasks[t].loss).bound(plan.tasks[t].loss_params) for t in self.tasks]

        # Head groups: tasks that share a stacked head (hard) or the one pooled output.
        group_labels = list(dict.fromkeys(plan.tasks[t].head_group for t in self.tasks))
        self.group_of_task = np.array([group_labels.index(plan.tasks[t].head_group) for t in self.tasks], np.int32)
        groups = [(plan.tasks[self.tasks[int(np.flatnonzero(self.group_of_task == g)[0])]].output_units,
                   [int(i) for i in np.flatnonzero(self.group_of_task == g)]) for g in range(len(group_labels))]
        # (group, loss) pairs: each computes its loss once over the batch; examples pick theirs.
        task_pairs = [(int(self.group_of_task[i]), self.losses[i]) for i in range(self.num_tasks)]
        self.pairs = list(dict.fromkeys(task_pairs))
        self.pair_of_task = tf.constant([self.pairs.index(pair) for pair in task_pairs], tf.int32)
        self.base_weights = np.array([plan.tasks[t].weight for t in self.tasks], np.float32)

        keras.utils.set_random_seed(self.seed)
        structure = spec.structure
        with strategy.scope():
            self.net = SHARING.get(structure.sharing).build(structure, groups, self.num_tasks, data.mean, data.std)
            self.net(tf.zeros((1,) + tuple(data.input_shape)), tf.zeros((1,), tf.int32))
            for layer in self.net._flatten_layers(include_self=False):  # e.g. a backbone's weights file
                if hasattr(layer, "load_initial_weights"):
                    layer.load_initial_weights()
            shared_sizes = tuple(int(np.prod(v.shape)) for v in self.net.shared_variables())
            self.chain = WeightingChain.create(
                spec.training.weighting,
                WeightingContext(self.tasks, self.base_weights, period=spec.training.log_every, seed=self.seed,
                                 shared_sizes=shared_sizes))
            self.trainable = list(self.net.trainable_weights) + self.chain.trainable_variables()
            self.optimizer = prepare_optimizer(make_optimizer(spec.training, steps), self.trainable)
        shared_ids = {id(v) for v in self.net.shared_variables()}
        self.shared = [v for v in self.trainable if id(v) in shared_ids]
        self.specific = [v for v in self.trainable if id(v) not in shared_ids]
        self.last_shared = self.net.last_shared_kernel()
        self.gradient_space = self.chain.gradient_space  # spec rules ensure the net has `represent` when needed
        # How gradient methods get the T per-task gradients of the shared parameters:
        # "batched": the trunk once more, laid out per task with a parameter copy per task, and
        # one backward pass (hard sharing whose trunk rows are independent; else as "pfor");
        # "pfor": one vectorised Jacobian (T backward passes in one graph); "loop": one
        # tape.gradient per task, the usual way (baselines of bench/bench_weighting_speed.py).
        self.task_gradients = "batched"
        self.trunk_gradients = None
        self._slice_trunks: dict = {}  # slice count -> PerTaskTrunk over (slice, task) pairs (MoDo, SDMGrad)
        if self.gradient_space == "parameters" and hasattr(self.net, "per_task_trunk"):
            self.trunk_gradients = self.net.per_task_trunk(self.num_tasks, self.batch_size // self.replicas, self.shared)

        self.rates = sampling_rates(spec, data.train_sizes())
        dataset = train_dataset(data, self.batch_size, self.rates, self.seed)
        # A plain (checkpointable) iterator over GLOBAL batches; each replica takes its slice.
        # tf.distribute's own iterators cannot be checkpointed, and resume must be exact.
        self.iterator = iter(dataset)
        self.validation_iterator = self._validation_iterator() if self.chain.needs_validation else None
        if jit_compile is None:
            jit_compile = spec.runtime.jit_compile
        if jit_compile is None:
            # XLA where it helps: on GPUs. On CPU it made the digits step slower (8.1 vs 5.7 ms)
            # and the first step 3x slower to build (docs/benchmarks.md), so it is off there.
            jit_compile = bool(tf.config.list_logical_devices("GPU"))
        self.jit_compile = bool(jit_compile) and self.replicas == 1
        self._replica_step = tf.function(self._replica_step_impl, jit_compile=self.jit_compile, autograph=False)
        self._step = tf.function(self._distributed_step, autograph=False)
        self._many_steps = tf.function(self._many_steps_impl)
        self.steps_per_call = STEPS_PER_CALL if self.replicas == 1 else 1
        self._predict_fns: dict = {}

    # ------------------------------------------------------------------ training

    def _all_reduce(self, value):
        if self.replicas == 1:
            return value
        return tf.distribute.get_replica_context().all_reduce(tf.distribute.ReduceOp.SUM, value)

    def per_example_losses(self, outputs, labels, task):
        """Per-example loss [B] of each example's own task, and a 0/1 mask of labelled examples."""
        valid = tf.reduce_all(tf.math.is_finite(labels), axis=1)
        clean = tf.where(valid[:, None], labels, tf.zeros_like(labels))
        pair = tf.gather(self.pair_of_task, task)
        per_example = tf.zeros(tf.shape(task), tf.float32)
        for index, (group, loss) in enumerate(self.pairs):
            member = tf.equal(pair, index)
            safe = tf.where(member[:, None], clean, tf.zeros_like(clean))
            per_example = tf.where(member, loss.per_example(safe, outputs[group]), per_example)
        return per_example, tf.cast(valid, tf.float32)

    def task_losses(self, outputs, labels, task):
        """(this replica's contributions to the per-task mean losses [T], global example counts [T])."""
        per_example, mask = self.per_example_losses(outputs, labels, task)
        sums = tf.math.unsorted_segment_sum(per_example * mask, task, self.num_tasks)
        counts = self._all_reduce(tf.math.unsorted_segment_sum(mask, task, self.num_tasks))
        return sums / tf.maximum(counts, 1.0), counts

    def _validation_iterator(self):
        """Global validation batches for a transform that trains on held-out data (Auto-Lambda)."""
        empty = [name for i, name in enumerate(self.tasks) if self.data.splits["validation"].size(i) == 0]
        if empty:
            raise DataError(f"weighting {' '.join(self.chain.names)} trains on the validation split, but task(s) "
                            f"{', '.join(empty)} have no validation rows", hint="give their datasets split: {validation: 0.1, ...}")
        return iter(train_dataset(self.data, self.batch_size, self.rates, self.seed + 1, split="validation"))

    def _lookahead(self, x, labels, task, validation) -> Lookahead:
        def losses_at(values, inputs, targets, ids):
            fixed = [tf.convert_to_tensor(v) for v in self.net.non_trainable_variables]
            outputs, _ = self.net.stateless_call(values, fixed, inputs, ids, training=True)
            return self.task_losses(outputs, targets, ids)[0]

        return Lookahead(values=lambda: [tf.convert_to_tensor(v) for v in self.net.trainable_variables],
                         train_losses=lambda values: losses_at(values, x, labels, task),
                         validation_losses=lambda values: losses_at(values, *validation),
                         all_reduce=self._all_reduce, learning_rate=self.optimizer.learning_rate)

    def _slice_gradients(self, x, labels, task, weights, count: int):
        """Per-task shared gradients of w_i L_i on `count` disjoint slices of the global batch [count, T, P].

        Example b of the global batch is in slice b mod count, so the slices are the same on one
        device and on many; each slice's L_i is its own per-task mean (globally reduced).
        """
        local = tf.shape(task)[0]
        first = 0 if self.replicas == 1 else tf.distribute.get_replica_context().replica_id_in_sync_group * local
        slice_of = (tf.cast(first, tf.int32) + tf.range(local)) % count
        trunk = self._batched_trunk(count)
        batched = trunk is not None
        with tf.GradientTape(persistent=True) as tape:
            h = self.net.represent(x, training=True) if batched else None
            outputs = self.net.decode(h, task, training=True) if batched else self.net(x, task, training=True)
            per_example, mask = self.per_example_losses(outputs, labels, task)
            terms = []
            for s in range(count):
                member = mask * tf.cast(tf.equal(slice_of, s), tf.float32)
                sums = tf.math.unsorted_segment_sum(per_example * member, task, self.num_tasks)
                counts = self._all_reduce(tf.math.unsorted_segment_sum(member, task, self.num_tasks))
                terms.append(tf.unstack(scale_loss(self.optimizer, tf.stop_gradient(weights) * sums / tf.maximum(counts, 1.0))))
            total = tf.add_n([t for row in terms for t in row]) if batched else None
        if batched:  # each example is in one (slice, task) pair: those pairs are the batched pass's tasks
            delta = tf.stop_gradient(tape.gradient(total, h))
            del tape
            rows = trunk(self.net.standardize(x), delta, slice_of * self.num_tasks + task)
            return tf.reshape(self._all_reduce(rows), [count, self.num_tasks, -1])
        samples = []
        for s in range(count):
            rows = []
            for i in range(self.num_tasks):
                grads = tape.gradient(terms[s][i], self.shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                rows.append(self._all_reduce(tf.concat([tf.reshape(tf.convert_to_tensor(g), [-1]) for g in grads], 0)))
            samples.append(tf.stack(rows))
        del tape
        return tf.stack(samples)

    def _batched_trunk(self, slices: int = 1):
        """The batched per-task trunk pass (tasks = the (slice, task) pairs of `slices` slices),
        or None when the per-task gradients are taken another way. XLA needs static shapes, and
        the per-task layout's width is the batch's largest task count."""
        if self.trunk_gradients is None or self.task_gradients != "batched" or self.jit_compile:
            return None
        if slices == 1:
            return self.trunk_gradients
        if slices not in self._slice_trunks:
            self._slice_trunks[slices] = self.net.per_task_trunk(slices * self.num_tasks,
                                                                 self.batch_size // self.replicas, self.shared)
        return self._slice_trunks[slices]

    def _replica_step_impl(self, x, labels, task, validation=None):
        if validation is not None:
            self.chain.before_step(self._lookahead(x, labels, task, validation))
        space = self.gradient_space
        need_norms = self.chain.needs_gradient_norms
        with tf.GradientTape(persistent=space is not None or need_norms) as tape:
            if space is not None and hasattr(self.net, "represent"):
                h = self.net.represent(x, training=True)
                outputs = self.net.decode(h, task, training=True)
            else:
                h, outputs = None, self.net(x, task, training=True)
            losses, counts = self.task_losses(outputs, labels, task)
            present = counts > 0
            observed = tf.stop_gradient(self._all_reduce(losses))
            inputs = StepInputs(losses=losses, observed=observed, present=present,
                                step=self.optimizer.iterations, replicas=self.replicas)
            weights, extra = self.chain.weigh(inputs, tf.constant(self.base_weights))
            total = tf.reduce_sum(weights * losses) + extra
            auxiliary = getattr(self.net, "auxiliary_loss", lambda x, task: None)(x, task)
            if auxiliary is not None:  # a sum over this replica's rows: divided by the global batch
                total = total + auxiliary / float(self.batch_size)
            scaled = scale_loss(self.optimizer, total)
            weighted = weights * losses
            # The Python-loop baseline (bench only) must slice the terms while the tape records.
            terms = tf.unstack(weighted) if space is not None and self.task_gradients == "loop" else None
        if need_norms:
            inputs.grad_norms = self._gradient_norms(tape, losses)
        if space is None:
            grads = tape.gradient(scaled, self.trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        else:
            # The loss scale (mixed precision) is applied after the combination: methods such as
            # Nash-MTL are not scale invariant, so they must see the true per-task gradients.
            factor = scale_loss(self.optimizer, tf.constant(1.0))
            if space == "parameters":
                if self.chain.gradient_samples:  # MoDo, SDMGrad: independent estimates from disjoint slices
                    inputs.sample_gradients = self._slice_gradients(x, labels, task, weights, self.chain.gradient_samples)
                shared_grads = self._parameter_space_gradients(tape, weighted, terms, h, x, task, inputs, factor)
            else:
                rep_grad = self._representation_gradient(tape, weighted, h, inputs)
                shared_grads = tape.gradient(h, self.shared, output_gradients=rep_grad * factor,
                                             unconnected_gradients=tf.UnconnectedGradients.ZERO)
            specific_grads = tape.gradient(scaled, self.specific, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            lookup = {id(v): g for v, g in zip(self.shared + self.specific, list(shared_grads) + list(specific_grads))}
            grads = [lookup[id(v)] for v in self.trainable]
        if space is not None or need_norms:
            del tape
        self.chain.update(inputs, weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable))
        if self.chain.needs_losses_after_step:  # FAMO: the loss decrease on this batch
            after, _ = self.task_losses(self.net(x, task, training=True), labels, task)
            self.chain.after_step(inputs, tf.stop_gradient(self._all_reduce(after)))
        norm = tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads])
        return total, losses, weights, tf.cast(present, tf.float32), norm

    def _gradient_norms(self, tape, losses):
        """||grad_W L_i|| of the globally reduced per-task gradients at the last shared weight W [T] (GradNorm)."""
        jacobian = tape.jacobian(losses, self.last_shared, experimental_use_pfor=True,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
        flat = self._all_reduce(tf.reshape(jacobian, [self.num_tasks, -1]))
        return tf.norm(flat, axis=1)

    def _task_jacobian(self, tape, weighted, terms, h, x, task):
        """Per-task gradients of the shared variables, flattened [T, P].

        With a shared representation h, the heads and losses are differentiated once: each
        example belongs to one task, so delta_b = d(sum_j w_j L_j)/dh_b = d(w_i L_i)/dh_b for
        its task i, and g_i = d/dtheta sum_{b in task i} stop_gradient(delta_b) . h_b exactly.
        Those T surrogates then only involve the trunk: one batched backward pass over the
        batch laid out per task (`task_gradients.PerTaskTrunk`) where the trunk allows, else
        a vectorised Jacobian (pfor).
        """
        if terms is not None:  # the usual Python loop, one backward pass per task (bench baseline)
            rows = [tape.gradient(term, self.shared, unconnected_gradients=tf.UnconnectedGradients.ZERO) for term in terms]
            return tf.stack([tf.concat([tf.reshape(g, [-1]) for g in row], 0) for row in rows])
        target = weighted
        if h is not None:
            delta = tf.stop_gradient(tape.gradient(weighted, h))  # the sum of the T terms
            trunk = self._batched_trunk()
            if trunk is not None:
                return trunk(self.net.standardize(x), delta, task)
            with tape:
                target = tf.math.unsorted_segment_sum(tf.reduce_sum(delta * h, axis=1), task, self.num_tasks)
        jacobian = tape.jacobian(target, self.shared, experimental_use_pfor=True,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return tf.concat([tf.reshape(j, [self.num_tasks, -1]) for j in jacobian], 1)

    def shared_task_gradients(self, x, labels, task):
        """This replica's [T, P] gradients of w_i L_i (the tasks' spec weights) w.r.t. the shared
        trunk on one batch (hard sharing), computed the `task_gradients` way (tests and benchmarks)."""
        with tf.GradientTape(persistent=True) as tape:
            h = self.net.represent(x, training=True)
            losses, _ = self.task_losses(self.net.decode(h, task, training=True), labels, task)
            weighted = tf.constant(self.base_weights) * losses
            terms = tf.unstack(weighted) if self.task_gradients == "loop" else None
        return self._task_jacobian(tape, weighted, terms, h, x, task)

    def _parameter_space_gradients(self, tape, weighted, terms, h, x, task, inputs, factor):
        """The shared variables' gradients after the chain combined the GLOBAL per-task gradients."""
        flat = self._all_reduce(self._task_jacobian(tape, weighted, terms, h, x, task))
        if self.chain.gramian_transform is not None:
            coefficients = self.chain.combine(tf.matmul(flat, flat, transpose_b=True), inputs)
            combined = tf.linalg.matvec(flat, coefficients, transpose_a=True)
        else:
            combined = tf.reduce_sum(self.chain.transform_gradients(flat, inputs), axis=0)
        combined = combined * factor / float(self.replicas)  # the optimizer sums replicas again
        out, offset = [], 0
        for v in self.shared:
            size = int(np.prod(v.shape))
            out.append(tf.reshape(combined[offset: offset + size], v.shape))
            offset += size
        return out

    def _representation_gradient(self, tape, weighted, h, inputs):
        """This replica's combined gradient of the shared representation h [B, d].

        Replicas hold disjoint examples, so the global Gramian of the representation
        gradients is the sum of the replicas' Gramians (a T x T all-reduce); transforms that
        need the full rows see them all-gathered along the batch, and each replica keeps its slice.
        """
        jacobian = tape.jacobian(weighted, h, experimental_use_pfor=True,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)  # [T, B, d]
        if self.chain.gramian_transform is not None:
            gramian = self._all_reduce(tf.einsum("tbd,sbd->ts", jacobian, jacobian))
            return tf.einsum("t,tbd->bd", self.chain.combine(gramian, inputs), jacobian)
        local = tf.shape(h)[0]
        if self.replicas > 1:
            context = tf.distribute.get_replica_context()
            jacobian_all, h_all = context.all_gather(jacobian, axis=1), context.all_gather(h, axis=0)
            start = tf.cast(context.replica_id_in_sync_group, tf.int32) * local
        else:
            jacobian_all, h_all, start = jacobian, h, 0
        inputs.representation = tf.stop_gradient(h_all)
        rows = self.chain.transform_gradients(tf.reshape(jacobian_all, [self.num_tasks, -1]), inputs)
        combined = tf.reshape(tf.reduce_sum(rows, axis=0), tf.shape(h_all))
        return combined[start: start + local]

    def _distributed_step(self, batch, validation=None):
        x, labels, task = batch
        total, losses, weights, present, norm = self.strategy.run(self._replica_step, args=(x, labels, task, validation))
        reduce = self.strategy.reduce
        return {
            "loss": reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
            "tasks": reduce(tf.distribute.ReduceOp.SUM, losses, axis=None),
            "weights": reduce(tf.distribute.ReduceOp.MEAN, weights, axis=None),
            "present": reduce(tf.distribute.ReduceOp.MEAN, present, axis=None),
            "grad_norm": reduce(tf.distribute.ReduceOp.SUM, norm, axis=None) if self.replicas > 1 else norm,
        }

    def next_batch(self, iterator=None):
        """The next global batch, split into per-replica slices when there are several replicas."""
        batch = next(iterator or self.iterator)
        if self.replicas == 1:
            return batch
        per = self.batch_size // self.replicas

        def replica_slice(context):
            start = context.replica_id_in_sync_group * per
            return tuple(part[start: start + per] for part in batch)

        return self.strategy.experimental_distribute_values_from_function(replica_slice)

    def _batches(self):
        if self.validation_iterator is None:
            return (self.next_batch(),)
        return self.next_batch(), self.next_batch(self.validation_iterator)

    def compiled_step(self):
        """One step returning tensors only (for benchmarks: no host transfer of per-task values)."""
        return self._step(*self._batches())

    def _many_steps_impl(self, count):
        """Up to `count` steps in one graph; stops after the first step with a non-finite output."""
        def step():
            validation = () if self.validation_iterator is None else (next(self.validation_iterator),)
            return self._distributed_step(next(self.iterator), *validation)

        # The total is non-finite whenever a task loss or weight is (0 * inf is NaN too).
        return steps_until_non_finite(step, count, watched=("loss", "grad_norm"))

    def train_steps(self, steps: int):
        """(the last step's values, steps run): several steps per call on one replica."""
        if self.steps_per_call == 1:
            return self.train_step(), 1
        count = max(1, min(int(steps), self.steps_per_call))
        out, ran = self._many_steps(tf.constant(count, tf.int32))
        return self._values(out), int(ran)

    def train_step(self) -> Mapping[str, Any]:
        return self.train_on(self.next_batch())

    def train_on(self, batch) -> Mapping[str, Any]:
        """One optimizer update on `batch` (from `next_batch`); what `train_step` returns.

        For callers that look at the batch before the update (the affinity probe).
        """
        validation = () if self.validation_iterator is None else (self.next_batch(self.validation_iterator),)
        return self._values(self._step(batch, *validation))

    def _values(self, out) -> dict[str, Any]:
        tasks, weights, present = out["tasks"].numpy(), out["weights"].numpy(), out["present"].numpy()
        values: dict[str, Any] = {"loss": float(out["loss"].numpy()), "grad_norm": float(out["grad_norm"].numpy())}
        reweighted = self.chain.reweights
        for i, name in enumerate(self.tasks):
            if present[i] > 0:
                values[f"loss/{name}"] = float(tasks[i])
                if reweighted:
                    values[f"weight/{name}"] = float(weights[i])
        return values

    def checkpoint_items(self) -> Mapping[str, Any]:
        validation = {"validation_data": self.validation_iterator} if self.validation_iterator is not None else {}
        return {"net": variables_of(self.net), "optimizer": self.optimizer, "data": self.iterator,
                **validation, **self.chain.checkpoint_items()}

    # ------------------------------------------------------------------ evaluation

    def _predict_fn(self, task: int):
        if task not in self._predict_fns:
            group = int(self.group_of_task[task])
            loss = self.losses[task]

            @tf.function(input_signature=[tf.TensorSpec((None,) + tuple(self.data.input_shape), tf.float32)])
            def predict(x):
                ids = tf.fill(tf.shape(x)[:1], tf.constant(task, tf.int32))
                return loss.predictions(self.net(x, ids, training=False)[group])

            self._predict_fns[task] = predict
        return self._predict_fns[task]

    def predict(self, task: int, x: np.ndarray) -> dict[str, np.ndarray]:
        fn = self._predict_fn(task)
        parts = [fn(tf.constant(x[i: i + EVAL_BATCH], tf.float32)) for i in range(0, len(x), EVAL_BATCH)]
        return {k: np.concatenate([p[k].numpy() for p in parts]) for k in parts[0]} if parts else {}

    def evaluate(self, split: str) -> Mapping[str, float]:
        arrays = self.data.splits[split]
        out: dict[str, float] = {}
        total = 0.0
        any_rows = False
        for i, name in enumerate(self.tasks):
            if arrays.size(i) == 0:
                continue
            any_rows = True
            labels = arrays.labels[i]
            predictions = self.predict(i, arrays.task_inputs(i))
            task_loss = float(np.mean(self.losses[i].numpy_loss(labels, predictions)))
            out[f"{name}/loss"] = task_loss
            total += float(self.base_weights[i]) * task_loss
            out.update({f"{name}/{k}": v for k, v in compute_metrics(self.plan.tasks[name].metrics, labels, predictions).items()})
        if any_rows:
            out["loss"] = total
        return out

    # ------------------------------------------------------------------ export and report

    def export(self, directory: str) -> None:
        module = tf.Module()
        module.net = self.net
        signatures = {}
        for i, name in enumerate(self.tasks):
            fn = self._predict_fn(i)
            setattr(module, f"serve_{name}", fn)
            signatures[name] = fn.get_concrete_function()
        tf.saved_model.save(module, directory, signatures=signatures)
        (Path(directory) / EXPORT_INFO_FILE).write_text(json.dumps(self.describe(), indent=2) + "\n", encoding="utf-8")

    def describe(self) -> dict:
        """What `evaluate` and `predict` need besides the SavedModel: tasks, shapes, class names."""
        return ExportInfo.model_validate({
            "sharing": self.plan.sharing,
            "input_shape": list(self.data.input_shape),
            "tasks": {
                name: {
                    "dataset": t.dataset, "target": t.target, "loss": t.loss, "loss_params": t.loss_params, "metrics": t.metrics,
                    "input_columns": t.input_columns, "output_units": t.output_units, "label_width": t.label_width,
                    "class_names": self.data.class_names.get(name), "weight": t.weight,
                }
                for name, t in self.plan.tasks.items()
            },
        }).model_dump(mode="json")

    def parameter_counts(self) -> Mapping[str, int]:
        shared = sum(int(np.prod(v.shape)) for v in self.net.weights if id(v) in {id(s) for s in self.net.shared_variables()}
                     or _is_shared_nontrainable(v, self.net))
        total = sum(int(np.prod(v.shape)) for v in self.net.weights) + sum(
            int(np.prod(v.shape)) for v in self.chain.trainable_variables())
        return {"shared": shared, "task_specific": total - shared, "total": total}

    def report(self) -> Mapping[str, Any]:
        train = self.data.splits["train"]
        return {
            "sharing": self.plan.sharing,
            "tasks": {
                name: {"train_examples": train.size(i), "unlabelled_train_rows": train.dropped[i],
                       "sampling_rate": round(float(self.rates[i]), 6), "weight": float(self.base_weights[i])}
                for i, name in enumerate(self.tasks)
            },
            "weighting": list(self.chain.names),
            "final_task_weights": self._final_weights(),
            "jit_compile": self.jit_compile,
            "batch_size": self.batch_size,
            **({"learned_sharing": self.net.sharing_report(self.tasks)} if hasattr(self.net, "sharing_report") else {}),
        }

    def _final_weights(self) -> Optional[dict]:
        if not self.chain.reweights:
            return None
        inputs = StepInputs(losses=tf.zeros([self.num_tasks]), observed=tf.zeros([self.num_tasks]),
                            present=tf.ones([self.num_tasks], tf.bool), step=self.optimizer.iterations)
        weights, _ = self.chain.weigh(inputs, tf.constant(self.base_weights))
        return {name: float(w) for name, w in zip(self.tasks, weights.numpy())}


def variables_of(layer) -> tf.Module:
    """A checkpointable holder of every variable of a Keras 3 layer, in creation order.

    Keras 3 layers that keep sublayers in lists report no checkpoint children to
    tf.train.Checkpoint, so their weights (and batch-norm statistics, and dropout's RNG
    state) would be silently missing from checkpoints. This lists them explicitly.
    """
    holder = tf.Module(name=f"{layer.name}_variables")
    holder.variables_list = list(layer.variables)
    return holder


def _is_shared_nontrainable(variable, net) -> bool:
    """Batch-norm moving statistics of shared layers count as shared."""
    if hasattr(net, "shared_layers"):
        layers = net.shared_layers()
    else:
        layers = list(getattr(net, "body", [])) + ([net.output_layer] if hasattr(net, "output_layer") else [])
    return any(variable is w for layer in layers for w in layer.non_trainable_weights)
