"""`MultiTaskProgram`: a pooled or hard-sharing spec lowered to a trainable TensorFlow program.

One training step (a `tf.function`, XLA-compiled on one replica when the spec or the
default asks for it) on a global batch of examples from mixed tasks:

    outputs  = net(x, task)                              one tensor per head group
    l_b      = loss_{task_b}(y_b, outputs[group_b])      per example, NaN labels masked to 0
    L_i      = sum_{b: task_b = i} l_b / n_i             n_i summed over replicas
    weights  = weighting chain (equal/static/uncertainty/dwa/gradnorm/...)
    loss     = sum_i weights_i L_i (+ transform terms)   PCGrad edits per-task gradients

Per-task losses are computed with segment sums over task ids, so the graph does not grow
with the number of tasks. Under a multi-replica strategy every replica divides by the
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
from polytask.compiler.program import EXPORT_INFO_FILE
from polytask.compiler.weighting import StepInputs, WeightingChain, WeightingContext

EVAL_BATCH = 4096


class MultiTaskProgram:
    """Pooled or hard sharing: the network, optimizer, weighting chain and data, ready for `fit`."""

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
            self.chain = WeightingChain.create(
                spec.training.weighting,
                WeightingContext(self.tasks, self.base_weights, period=spec.training.log_every, seed=self.seed))
            self.trainable = list(self.net.trainable_weights) + self.chain.trainable_variables()
            self.optimizer = prepare_optimizer(make_optimizer(spec.training, steps), self.trainable)
        shared_ids = {id(v) for v in self.net.shared_variables()}
        self.shared = [v for v in self.trainable if id(v) in shared_ids]
        self.specific = [v for v in self.trainable if id(v) not in shared_ids]
        self.last_shared = self.net.last_shared_kernel()

        self.rates = sampling_rates(spec, data.train_sizes())
        dataset = train_dataset(data, self.batch_size, self.rates, self.seed)
        # A plain (checkpointable) iterator over GLOBAL batches; each replica takes its slice.
        # tf.distribute's own iterators cannot be checkpointed, and resume must be exact.
        self.iterator = iter(dataset)
        if jit_compile is None:
            jit_compile = spec.runtime.jit_compile
        if jit_compile is None:
            # XLA where it helps: on GPUs. On CPU it made the digits step slower (8.1 vs 5.7 ms)
            # and the first step 3x slower to build (docs/benchmarks.md), so it is off there.
            jit_compile = bool(tf.config.list_logical_devices("GPU"))
        self.jit_compile = bool(jit_compile) and self.replicas == 1
        self._replica_step = tf.function(self._replica_step_impl, jit_compile=self.jit_compile, autograph=False)
        self._step = tf.function(self._distributed_step, autograph=False)
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

    def _replica_step_impl(self, x, labels, task):
        need_tasks = self.chain.needs_task_gradients
        need_norms = self.chain.needs_gradient_norms
        with tf.GradientTape(persistent=need_tasks or need_norms) as tape:
            outputs = self.net(x, task, training=True)
            losses, counts = self.task_losses(outputs, labels, task)
            present = counts > 0
            observed = tf.stop_gradient(self._all_reduce(losses))
            inputs = StepInputs(losses=losses, observed=observed, present=present,
                                step=self.optimizer.iterations, replicas=self.replicas)
            weights, extra = self.chain.weigh(inputs, tf.constant(self.base_weights))
            total = tf.reduce_sum(weights * losses) + extra
            scaled = scale_loss(self.optimizer, total)
            # Per-task terms must be sliced while the tape records, or their gradients are None.
            task_terms = tf.unstack(losses) if need_norms else None
            weighted_terms = tf.unstack(scale_loss(self.optimizer, weights * losses)) if need_tasks else None
        if need_norms:
            norms = []
            for i in range(self.num_tasks):
                (g,) = tape.gradient(task_terms[i], [self.last_shared], unconnected_gradients=tf.UnconnectedGradients.ZERO)
                norms.append(tf.norm(self._all_reduce(tf.convert_to_tensor(g))))
            inputs.grad_norms = tf.stack(norms)
        if need_tasks:
            flat_tasks = []
            for i in range(self.num_tasks):
                grads = tape.gradient(weighted_terms[i], self.shared, unconnected_gradients=tf.UnconnectedGradients.ZERO)
                flat_tasks.append(self._all_reduce(tf.concat([tf.reshape(tf.convert_to_tensor(g), [-1]) for g in grads], 0)))
            surgery = self.chain.transform_gradients(tf.stack(flat_tasks), inputs)
            flat = tf.reduce_sum(surgery, axis=0) / float(self.replicas)  # the optimizer sums replicas again
            shared_grads, offset = [], 0
            for v in self.shared:
                size = int(np.prod(v.shape))
                shared_grads.append(tf.reshape(flat[offset: offset + size], v.shape))
                offset += size
            specific_grads = tape.gradient(scaled, self.specific, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            lookup = {id(v): g for v, g in zip(self.shared + self.specific, shared_grads + list(specific_grads))}
            grads = [lookup[id(v)] for v in self.trainable]
        else:
            grads = tape.gradient(scaled, self.trainable, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        if need_tasks or need_norms:
            del tape
        self.chain.update(inputs, weights)
        self.optimizer.apply_gradients(zip(grads, self.trainable))
        norm = tf.linalg.global_norm([tf.convert_to_tensor(g) for g in grads])
        return total, losses, weights, tf.cast(present, tf.float32), norm

    def _distributed_step(self, batch):
        x, labels, task = batch
        total, losses, weights, present, norm = self.strategy.run(self._replica_step, args=(x, labels, task))
        reduce = self.strategy.reduce
        return {
            "loss": reduce(tf.distribute.ReduceOp.SUM, total, axis=None),
            "tasks": reduce(tf.distribute.ReduceOp.SUM, losses, axis=None),
            "weights": reduce(tf.distribute.ReduceOp.MEAN, weights, axis=None),
            "present": reduce(tf.distribute.ReduceOp.MEAN, present, axis=None),
            "grad_norm": reduce(tf.distribute.ReduceOp.SUM, norm, axis=None) if self.replicas > 1 else norm,
        }

    def next_batch(self):
        """The next global batch, split into per-replica slices when there are several replicas."""
        batch = next(self.iterator)
        if self.replicas == 1:
            return batch
        per = self.batch_size // self.replicas

        def replica_slice(context):
            start = context.replica_id_in_sync_group * per
            return tuple(part[start: start + per] for part in batch)

        return self.strategy.experimental_distribute_values_from_function(replica_slice)

    def compiled_step(self):
        """One step returning tensors only (for benchmarks: no host transfer of per-task values)."""
        return self._step(self.next_batch())

    def train_step(self) -> Mapping[str, Any]:
        out = self._step(self.next_batch())
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
        return {"net": variables_of(self.net), "optimizer": self.optimizer, "data": self.iterator,
                **self.chain.checkpoint_items()}

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
        return {
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
        }

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
    layers = getattr(net, "trunk", None) or getattr(net, "body", [])
    extra = [net.output_layer] if hasattr(net, "output_layer") else []
    return any(variable is w for layer in list(layers) + extra for w in layer.non_trainable_weights)
