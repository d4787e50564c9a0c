"""Meta-iterations per second: polytask's vectorised MAML vs a hand-written TF2 MAML.

Configuration (MAML paper, sinusoid): meta-batch 25 tasks, K = 10 support + 10 query
points, network 1-40-40-1 relu, one inner SGD step (lr 0.01), second-order meta-gradient,
Adam 1e-3. Both run in this process on the same CPU threads:

- polytask: `MetaProgram.train_steps(10)` compiled from examples/meta/sinusoid_maml.yaml
  (episodes sampled inside the step's graph, tasks vectorised, XLA, 10 meta-iterations per
  graph call), exactly what `polytask train` runs between log/eval/checkpoint steps; also
  `train_step()`, one meta-iteration per call;
- hand-written: the way most users write MAML in TF2 -- a Keras-free functional MLP,
  a Python `for` loop over the 25 tasks inside one `tf.function`, nested GradientTapes,
  Adam; batches pre-sampled on the host (so its data cost is zero, favouring it).

Also reports polytask's step on a fixed batch (no input pipeline), and checks that both
compute the same meta-gradient on the same batch (so the speed-up is like for like).

    python bench/bench_maml.py [--iterations 2000] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "examples" / "meta" / "sinusoid_maml.yaml"
TASKS, SHOTS, INNER_LR = 25, 10, 0.01


class HandWrittenMAML:
    """Second-order MAML over a Python loop of tasks inside one tf.function (the common way)."""

    def __init__(self, theta: list[tf.Tensor], jit_compile: bool = False):
        self.weights = [tf.Variable(w) for w in theta]
        self.optimizer = tf.keras.optimizers.Adam(1e-3)
        self.step = tf.function(self._step, jit_compile=jit_compile)

    @staticmethod
    def forward(weights, x):
        h = tf.nn.relu(tf.matmul(x, weights[0]) + weights[1])
        h = tf.nn.relu(tf.matmul(h, weights[2]) + weights[3])
        return tf.matmul(h, weights[4]) + weights[5]

    def meta_gradients(self, sx, sy, qx, qy):
        with tf.GradientTape() as outer:
            total = 0.0
            for t in range(TASKS):  # unrolled: one copy of the inner loop per task
                with tf.GradientTape() as inner:
                    inner.watch(self.weights)
                    support_loss = tf.reduce_mean(tf.square(self.forward(self.weights, sx[t]) - sy[t]))
                grads = inner.gradient(support_loss, self.weights)
                fast = [w - INNER_LR * g for w, g in zip(self.weights, grads)]
                total += tf.reduce_mean(tf.square(self.forward(fast, qx[t]) - qy[t]))
            loss = total / TASKS
        return loss, outer.gradient(loss, self.weights)

    def _step(self, sx, sy, qx, qy):
        loss, grads = self.meta_gradients(sx, sy, qx, qy)
        self.optimizer.apply_gradients(zip(grads, self.weights))
        return loss


def rate(fn, iterations: int, warmup: int = 20, per_call: int = 1) -> float:
    """Iterations per second of `fn`, which runs `per_call` iterations per call."""
    for _ in range(max(1, warmup // per_call)):
        fn()
    calls = max(1, iterations // per_call)
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    float(out["loss"] if isinstance(out, dict) else out)
    return calls * per_call / (time.perf_counter() - start)


def fixed_batch_step(program, first_order=None):
    """polytask's compiled meta-gradient + the program's optimizer on a given batch: the step
    without the input pipeline. Gradients are scaled by 1 / meta-batch, as the program does."""
    compiled = tf.function(lambda t, e, b: program._gradients(t, e, b, first_order),
                           jit_compile=program.jit_compile)
    names = program.parameters.theta_names + program.parameters.extra_names
    variables = program.parameters.ordered()
    scale = 1.0 / program.meta_batch

    @tf.function
    def step(batch):
        theta, extra = program.parameters.read()
        grads, metrics = compiled(theta, extra, batch)
        program.optimizer.apply_gradients([(grads[n] * scale, v) for n, v in zip(names, variables)])
        return {"loss": tf.reduce_mean(metrics["loss"])}

    return step


def print_rates(results: dict, baseline: str, unit: str = "it/s") -> None:
    """Median rate of each row of `results` (name -> rates of the repeats) and its ratio to `baseline`."""
    reference = statistics.median(results[baseline])
    width = max(len(name) for name in results)
    for name, values in results.items():
        median = statistics.median(values)
        print(f"  {name:{width}s} {median:9.2f} {unit}   x{median / reference:5.2f}   "
              f"(repeats: {', '.join(f'{v:.2f}' for v in values)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    load_before = os.getloadavg()
    strategy = create_strategy("one_device")
    loaded = load_spec(SPEC)
    program = compile_program(loaded, strategy=strategy)
    assert program.meta_batch == TASKS and program.structure.inner.steps == 1

    theta, _ = program.parameters.read()
    names = program.parameters.theta_names
    hand = HandWrittenMAML([tf.identity(theta[n]) for n in names])
    hand_xla = HandWrittenMAML([tf.identity(theta[n]) for n in names], jit_compile=True)

    batches = [program.sampler.sample("train", tf.constant(i, tf.int64), TASKS) for i in range(64)]
    fixed = batches[0]

    # Same meta-gradient on the same batch (second order on both sides).
    grads, _ = program._gradients(theta, {}, fixed)
    _, reference = hand.meta_gradients(fixed["support_x"], fixed["support_y"], fixed["query_x"], fixed["query_y"])
    worst = max(float(tf.reduce_max(tf.abs(grads[n] / TASKS - r))) for n, r in zip(names, reference))
    print(f"max |meta-gradient difference| polytask vs hand-written: {worst:.2e}")

    counter = {"i": 0}

    def hand_step(model):
        def run():
            b = batches[counter["i"] % len(batches)]
            counter["i"] += 1
            return model.step(b["support_x"], b["support_y"], b["query_x"], b["query_y"])
        return run

    fixed_step = fixed_batch_step(program)

    per_call = program.steps_per_call

    def chunk():
        outputs, ran = program.train_steps(per_call)
        assert ran == per_call
        return outputs

    chunked = f"polytask train_steps({per_call}) (polytask train)"
    results = {chunked: [], "polytask train_step (1 per call)": [],
               "polytask: XLA meta-gradient + Adam, fixed batch": [],
               "hand-written, Python task loop": [], "hand-written, Python task loop + XLA": []}
    for _ in range(args.repeats):
        results[chunked].append(rate(chunk, args.iterations, per_call=per_call))
        results["polytask train_step (1 per call)"].append(rate(program.train_step, args.iterations))
        results["polytask: XLA meta-gradient + Adam, fixed batch"].append(rate(lambda: fixed_step(fixed), args.iterations))
        results["hand-written, Python task loop"].append(rate(hand_step(hand), args.iterations))
        results["hand-written, Python task loop + XLA"].append(rate(hand_step(hand_xla), args.iterations))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"TensorFlow {tf.__version__}, Python {platform.python_version()}; load average at start "
          f"{load_before[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    print(f"sinusoid MAML, meta-batch {TASKS}, 1-40-40-1, 1 inner step, second order; "
          f"{args.iterations} iterations x {args.repeats} repeats (median)")
    print_rates(results, "hand-written, Python task loop")


if __name__ == "__main__":
    main()
