"""`MetaProgram`: a meta spec lowered to TensorFlow, driven by the generic runtime loop.

One `train_step` is one meta-iteration: a meta-batch of episodes (tf.data, reproducible
from the seed) is split across replicas; each replica adapts its tasks -- all at once,
through the functional model's task axis, in one XLA-compiled function -- and computes
its share of the meta-gradient, scaled by 1 / global meta-batch; the Keras optimizer
all-reduces (sums) the shares and applies them, so any number of replicas gives the same
update as one device.

On one replica, with a family whose sampler draws episodes with stateless random ops
(`EpisodeSampler.samples_in_graph`, e.g. sinusoid), episode batch `batches_drawn` is sampled
inside the step's graph instead of a tf.data pipeline -- the same episodes, without the
iterator -- and `train_steps(n)` runs up to `STEPS_PER_CALL` meta-iterations in one graph
call: at this model size the per-call cost (function dispatch, XLA launch) is as large as
the meta-iteration itself (bench/bench_maml.py).
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Mapping, Optional

import keras
import numpy as np
import tensorflow as tf

from polytask.compiler.distribute import distribute_dataset
from polytask.compiler.meta.families import get_family
from polytask.compiler.meta.functional import FunctionalModel, initial_values
from polytask.compiler.meta.losses import TaskLoss
from polytask.compiler.optimizers import make_optimizer
from polytask.spec.registry import ALGORITHMS
from polytask.compiler.meta.plan import MetaPlan, meta_plan, resolve
from polytask.compiler.program import META_EXPORT_INFO_FILE, steps_until_non_finite
from polytask.errors import PolytaskError

#: Validation during training uses at most this many episodes (the final test uses
#: training.eval_episodes, default 600).
VALIDATION_EPISODES = 200
#: Examples per evaluation chunk: episodes are evaluated this many images at a time.
EVAL_CHUNK_EXAMPLES = 1024
#: Meta-iterations per graph call when episodes are sampled in-graph (see the module doc).
STEPS_PER_CALL = 10


def _attribute(name: str) -> str:
    return re.sub(r"\W", "_", name)


class MetaParameters(keras.layers.Layer):
    """The meta-learned tensors: the model's initial parameters theta and the algorithm's extras."""

    def __init__(self, theta: Mapping[str, tf.Tensor], extra: Mapping[str, tf.Tensor]):
        super().__init__(name="meta_parameters")
        self.theta_names, self.extra_names = list(theta), list(extra)
        for name, value in {**theta, **extra}.items():
            weight = self.add_weight(shape=value.shape, initializer=keras.initializers.Constant(value.numpy()),
                                     name=_attribute(name), trainable=True)
            setattr(self, "w_" + _attribute(name), weight)

    def variable(self, name: str):
        return getattr(self, "w_" + _attribute(name))

    def read(self):
        theta = {n: tf.convert_to_tensor(self.variable(n).value) for n in self.theta_names}
        extra = {n: tf.convert_to_tensor(self.variable(n).value) for n in self.extra_names}
        return theta, extra

    def ordered(self) -> list:
        return [self.variable(n) for n in self.theta_names + self.extra_names]


def ci95(values: np.ndarray) -> float:
    """Half-width of the normal-approximation 95% confidence interval of the mean."""
    values = np.asarray(values, np.float64)
    if len(values) < 2:
        return float("nan")
    return float(1.96 * values.std(ddof=1) / math.sqrt(len(values)))


class MetaProgram:
    """A compiled meta-learning program (satisfies `polytask.compiler.program.Program`)."""

    def __init__(self, loaded, strategy, *, seed: Optional[int] = None, allow_code: bool = False,
                 jit_compile: Optional[bool] = None):
        spec = loaded.spec
        self.loaded = loaded
        self.spec = spec
        self.strategy = strategy
        self.seed = int(spec.seed if seed is None else seed)
        self.structure = spec.structure
        self.description, self.architecture = resolve(loaded)
        self.plan = MetaPlan(meta_plan(loaded))
        self.sampler = get_family(spec.family.source).build(spec.family, loaded, seed=self.seed,
                                                            allow_code=allow_code)
        self.model = FunctionalModel(self.architecture)
        self.loss = TaskLoss(spec.loss_name, self.description.kind,
                             spec.loss_params)
        self.algorithm = ALGORITHMS.get(self.structure.algorithm).build(self.model, self.structure, self.loss,
                                                                 self.description)
        self.meta_batch = int(spec.training.meta_batch)
        replicas = int(strategy.num_replicas_in_sync)
        if self.meta_batch % replicas:
            raise PolytaskError(
                f"training.meta_batch {self.meta_batch} does not split evenly over {replicas} replicas",
                hint=f"meta_batch is the GLOBAL number of tasks per meta-iteration; use a multiple of {replicas}")
        if self.description.kind == "classification":
            self.sampler.check("train", self.description.ways, self.description.shots, self.description.queries)
        # XLA where it helps: it fuses the many small ops of dense models (sinusoid MAML: ~2x),
        # but on CPU its convolutions are slower than oneDNN's, so conv models run without it.
        slow = any(layer.descriptor.xla_slow_on_cpu for layer in self.architecture.layers)
        default_jit = not (slow and not tf.config.list_logical_devices("GPU"))
        self.jit_compile = default_jit if spec.runtime.jit_compile is None else bool(spec.runtime.jit_compile)
        if jit_compile is not None:
            self.jit_compile = bool(jit_compile)
        with strategy.scope():
            self.parameters = MetaParameters(initial_values(self.architecture, self.seed),
                                             self.algorithm.extra_variables())
            self.optimizer = make_optimizer(spec.training)
            self.optimizer.build(self.parameters.ordered())
            self.batches_drawn = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_drawn")
        # Episodes drawn inside the step's graph (no tf.data iterator), several steps per call.
        self.samples_in_graph = (int(strategy.num_replicas_in_sync) == 1
                                 and bool(getattr(self.sampler, "samples_in_graph", False)))
        self.steps_per_call = STEPS_PER_CALL if self.samples_in_graph else 1
        self._iterator = None
        self._step_fns: dict = {}  # first_order (None: the algorithm's own) -> compiled step
        self._eval_fns: dict = {}
        self._step_times: list[tuple[float, int]] = []  # (seconds, iterations) per call
        self._last_test: Optional[dict] = None

    # ------------------------------------------------------------------ Program protocol

    def checkpoint_items(self) -> Mapping[str, Any]:
        # The data position is `batches_drawn`: episode i is a pure function of (seed, i), so
        # restoring the counter restores the data stream exactly.
        return {"meta_parameters": self.parameters, "optimizer": self.optimizer,
                "batches_drawn": self.batches_drawn}

    def train_step(self) -> Mapping[str, Any]:
        outputs, _ = self.train_steps(1)
        return outputs

    def train_steps(self, steps: int):
        """Up to `steps` meta-iterations in one call (at most `steps_per_call`).

        Returns (the last iteration's outputs, iterations run): the run stops early, after
        the first iteration with a non-finite output, so the runtime can name that step.
        """
        steps = max(1, min(int(steps), self.steps_per_call))
        first_order = None
        annealed = getattr(self.algorithm, "first_order_iterations", 0)
        if annealed:  # MAML++ derivative-order annealing: one compiled step per order
            remaining = annealed - int(self.batches_drawn.numpy())
            first_order = remaining > 0
            if first_order:
                steps = min(steps, remaining)  # a call never crosses the switch to second order
        if first_order not in self._step_fns:
            self._build_train_step(first_order)
        started = time.perf_counter()
        try:
            outputs, ran = self._run(steps, first_order)
        except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as exc:
            if not self.jit_compile or self.batches_drawn.numpy() > 0:
                raise
            # XLA could not compile this model on this device: run the same graph without it.
            print(f"note: XLA compilation failed ({str(exc).splitlines()[0][:120]}); "
                  "running without jit_compile")
            self.jit_compile = False
            self._step_fns.clear()
            self._iterator = None
            self._build_train_step(first_order)
            outputs, ran = self._run(steps, first_order)
        elapsed = time.perf_counter() - started
        self._step_times.append((elapsed, ran))
        return outputs, ran

    def _run(self, steps: int, first_order: Optional[bool]):
        step_fn = self._step_fns[first_order]
        if self.samples_in_graph:
            outputs, ran = step_fn(tf.constant(steps, tf.int32))
            return outputs, int(ran)
        outputs = step_fn(self._iterator)
        self.batches_drawn.assign_add(1)
        return outputs, 1

    def evaluate(self, split: str) -> Mapping[str, float]:
        episodes = int(self.spec.training.eval_episodes)
        if split == "validation":
            if self.description.kind == "classification" and not self._split_usable("validation"):
                return {}
            episodes = min(episodes, VALIDATION_EPISODES)
        result = self.evaluate_episodes(split, episodes)
        if split == "test":
            self._last_test = result
        final = result["curve"][-1]
        out: dict[str, float] = {}
        for key, stats in final.items():
            if key == "steps":
                continue
            out[key] = stats["mean"]
            out[f"{key}_ci95"] = stats["ci95"]
        if len(result["curve"]) > 1:
            for key, stats in result["curve"][0].items():
                if key != "steps":
                    out[f"{key}_before_adaptation"] = stats["mean"]
        return out

    def export(self, directory: str) -> None:
        """A SavedModel whose `adapt_and_predict` signature adapts on a support set and predicts queries."""
        module = tf.Module()
        module.parameters = self.parameters
        shape = list(self.description.input_shape)
        label = (tf.TensorSpec([None, None], tf.int64, name="support_y") if self.description.kind == "classification"
                 else tf.TensorSpec([None, None, 1], tf.float32, name="support_y"))

        @tf.function(input_signature=[tf.TensorSpec([None, None] + shape, tf.float32, name="support_x"), label,
                                      tf.TensorSpec([None, None] + shape, tf.float32, name="query_x")])
        def adapt_and_predict(support_x, support_y, query_x):
            theta, extra = self.parameters.read()
            return {"outputs": self.algorithm.predict(theta, extra, support_x, support_y, query_x,
                                                      ways=self.description.ways)}

        module.adapt_and_predict = adapt_and_predict
        with self.strategy.scope():
            tf.saved_model.save(module, directory, signatures={"adapt_and_predict": adapt_and_predict})
        (Path(directory) / META_EXPORT_INFO_FILE).write_text(json.dumps(self.describe_for_evaluation(), indent=2) + "\n")

    def report(self) -> Mapping[str, Any]:
        test = self._last_test or self.evaluate_episodes("test", int(self.spec.training.eval_episodes))
        # Steady state: without the first call (graph build) and the first ~5 iterations.
        calls, skipped = self._step_times[1:], sum(ran for _, ran in self._step_times[:1])
        while len(calls) > 1 and skipped < 5:
            skipped += calls[0][1]
            calls = calls[1:]
        iterations, seconds = sum(ran for _, ran in calls), sum(elapsed for elapsed, _ in calls)
        return {
            "meta_test": test,
            "meta_iterations_per_second": round(iterations / seconds, 2) if seconds else None,
            "jit_compile": self.jit_compile,
            "sampler": self.sampler.info(),
        }

    def parameter_counts(self) -> Mapping[str, int]:
        total = int(sum(np.prod(v.shape) for v in self.parameters.ordered()))
        return {"shared": total, "task_specific": 0, "total": total}

    # ------------------------------------------------------------------ training

    def _build_train_step(self, first_order: Optional[bool] = None) -> None:
        strategy = self.strategy
        global_tasks = self.meta_batch
        if not self.samples_in_graph and self._iterator is None:
            dataset = self.sampler.dataset("train", global_tasks, start=int(self.batches_drawn.numpy()))
            if strategy.num_replicas_in_sync > 1:
                # A plain batch() gives the distribution layer a static task axis to split.
                dataset = distribute_dataset(strategy, dataset.unbatch().batch(global_tasks, drop_remainder=True))
            self._iterator = iter(dataset)
        variables = self.parameters.ordered()
        names = self.parameters.theta_names + self.parameters.extra_names
        # On one replica the whole meta-iteration, optimizer update included, is one XLA
        # cluster. With several replicas the optimizer's all-reduce (a merge_call) cannot be
        # compiled, so only the meta-gradient computation is.
        whole_step_jit = self.jit_compile and strategy.num_replicas_in_sync == 1
        def compute(theta, extra, batch):
            return self._gradients(theta, extra, batch, first_order)

        gradients = compute if whole_step_jit else tf.function(compute, jit_compile=self.jit_compile)

        def replica_step(batch):
            theta, extra = self.parameters.read()
            grads, metrics = gradients(theta, extra, batch)
            scale = 1.0 / global_tasks
            self.optimizer.apply_gradients([(grads[n] * scale, v) for n, v in zip(names, variables)])
            return {k: tf.reduce_sum(v) * scale for k, v in metrics.items()}

        if whole_step_jit:
            replica_step = tf.function(replica_step, jit_compile=True)

        def reduce(per_replica):
            return {k: strategy.reduce(tf.distribute.ReduceOp.SUM, v, axis=None) for k, v in per_replica.items()}

        if self.samples_in_graph:
            def one_step():
                # Sampled outside the XLA cluster: XLA's stateless RNG draws other numbers
                # than TensorFlow's kernels, and these must be the tf.data pipeline's episodes.
                batch = self.sampler.sample("train", self.batches_drawn.read_value(), global_tasks)
                outputs = reduce(strategy.run(replica_step, args=(batch,)))
                self.batches_drawn.assign_add(1)
                return outputs

            @tf.function
            def steps(count):
                return steps_until_non_finite(one_step, count)

            self._step_fns[first_order] = steps
            return

        @tf.function
        def step(iterator):
            # next() inside the graph: no Python round trip per meta-iteration.
            return reduce(strategy.run(replica_step, args=(next(iterator),)))

        self._step_fns[first_order] = step

    def _gradients(self, theta, extra, batch, first_order: Optional[bool] = None):
        options = {}
        if getattr(self.algorithm, "multi_step_iterations", None):  # MAML++ MSL anneals by meta-iteration
            options["iteration"] = self.batches_drawn.read_value()
        if first_order is not None:
            options["first_order"] = first_order
        grads_theta, grads_extra, metrics = self.algorithm.meta_gradients(theta, extra, batch, **options)
        return {**grads_theta, **grads_extra}, metrics

    # ------------------------------------------------------------------ evaluation

    def _split_usable(self, split: str) -> bool:
        try:
            self.sampler.check(split, self.description.ways, self.description.shots, self.description.queries)
            return True
        except PolytaskError:
            return False

    def _eval_fn(self, key):
        if key not in self._eval_fns:
            steps, ways = key

            def run(theta, extra, batch):
                return self.algorithm.evaluate(theta, extra, batch, steps=steps, ways=ways)

            self._eval_fns[key] = tf.function(run, jit_compile=self.jit_compile)
        return self._eval_fns[key]

    def evaluate_episodes(self, split: str, episodes: int, *, ways: Optional[int] = None,
                          shots: Optional[int] = None, queries: Optional[int] = None,
                          steps: Optional[int] = None) -> dict:
        """Mean and 95% CI of query metrics over `episodes` episodes of `split`, after 0..steps steps."""
        d = self.description
        ways = ways or d.ways
        shots = shots or d.shots
        queries = queries or d.queries
        if d.kind == "classification":
            self.sampler.check(split, ways, shots, queries)
            head = self.architecture.output_shape[-1]
            if not self.algorithm.metric_based and ways > head:
                raise PolytaskError(
                    f"this {self.structure.algorithm} model has a {head}-way output layer and cannot do {ways}-way episodes",
                    hint=f"use --ways {head} or fewer (protonet models take any number of ways)")
        steps = self.algorithm.eval_steps if steps is None else steps
        per_task = (shots + queries) * (ways or 1)
        chunk = max(1, min(episodes, 100, EVAL_CHUNK_EXAMPLES // per_task))
        fn = self._eval_fn((steps, ways if d.kind == "classification" else None))
        theta, extra = self.parameters.read()
        collected: list[dict[str, list]] = []
        drawn = 0
        index = 0
        while drawn < episodes:
            batch = self.sampler.sample(split, tf.constant(index, tf.int64), chunk, ways=ways, shots=shots,
                                        queries=queries)
            curve = fn(theta, extra, batch)
            take = min(chunk, episodes - drawn)
            if not collected:
                collected = [{k: [] for k in point} for point in curve]
            for point, store in zip(curve, collected):
                for k, v in point.items():
                    store[k].append(v.numpy()[:take])
            drawn += take
            index += 1
        points = []
        for s, store in enumerate(collected):
            entry: dict[str, Any] = {"steps": s}
            for k, parts in store.items():
                values = np.concatenate(parts)
                entry[k] = {"mean": float(values.mean()), "ci95": ci95(values)}
            points.append(entry)
        return {"split": split, "episodes": int(episodes), "ways": ways if d.kind == "classification" else None,
                "shots": shots, "queries": queries, "algorithm": self.structure.algorithm,
                "inner_steps": steps, "curve": points}

    # ------------------------------------------------------------------ few-shot prediction

    def predict(self, support_x: np.ndarray, support_y: np.ndarray, query_x: np.ndarray,
                *, ways: Optional[int] = None, steps: Optional[int] = None) -> np.ndarray:
        """Adapt on one task's support set and return its query outputs (logits or values)."""
        theta, extra = self.parameters.read()
        out = self.algorithm.predict(theta, extra, tf.constant(support_x[None], tf.float32),
                                     tf.constant(support_y[None]), tf.constant(query_x[None], tf.float32),
                                     steps=steps, ways=ways)
        return out.numpy()[0]

    def describe_for_evaluation(self) -> dict:
        """What `polytask evaluate` needs to rebuild this program from a run directory."""
        return {"spec_path": str(self.loaded.path), "seed": self.seed,
                "algorithm": self.structure.algorithm, "family": self.spec.family.source,
                "input_shape": list(self.description.input_shape), "ways": self.description.ways}
