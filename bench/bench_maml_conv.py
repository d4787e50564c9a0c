"""Conv MAML on Omniglot: polytask's compiled meta step vs a hand-written per-task loop.

The network of examples/meta/omniglot_maml.yaml (4 x [conv3x3 32, batch norm, relu,
max-pool 2], flatten, dense to the ways; 1 inner step, lr 0.4) on the episodes that spec
draws: 5-way 1-shot 5 queries, meta-batch 8; `--ways 20` uses omniglot_maml_20way.yaml
(meta-batch 4, 3 queries). Second order, and first order (`--orders`). Both sides run in
this process on the same CPU threads, alternating, `--repeats` times; medians reported.

- polytask: `MetaProgram.train_steps(n)` (what `polytask train` runs: episodes drawn
  inside the step's graph, n meta-iterations per call), and the compiled meta-gradient +
  Adam on a fixed pre-drawn batch (no input pipeline);
- hand-written: the usual TF2 MAML -- a Python `for` loop over the tasks inside one
  `tf.function`, plain `tf.nn.conv2d` per task, nested GradientTapes, Adam; batches drawn
  beforehand on the host (its data cost is zero, which favours it).

Batch norm is the same on both sides: each task is normalised with its own support-set
statistics (the query set is not transductive), no running statistics. The script first
checks that both compute the same meta-gradient on the same batch, so the ratio is like
for like. `--profile` also times the parts: one convolution layer for all tasks as
polytask's grouped convolution vs a loop of per-task convolutions (forward + backward),
the forward pass alone, and drawing an episode batch.

    python bench/bench_maml_conv.py [--iterations 60] [--repeats 3] [--ways 5 20]
                                    [--orders second first] [--profile]
"""
from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from bench_maml import fixed_batch_step, print_rates, rate  # noqa: E402
from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "meta"
SPECS = {5: EXAMPLES / "omniglot_maml.yaml", 20: EXAMPLES / "omniglot_maml_20way.yaml"}
EPSILON = 1e-3  # batch_norm's default epsilon
WARMUP = 5  # warm-up iterations before timing (conv steps take ~0.1 s each)


def conv4_features(weights, x, stats_count):
    """The conv-4 embedding, one task: x [B, 28, 28, 1] -> [B, features].

    `weights`: per block conv kernel, conv bias, batch-norm gamma, beta (polytask's theta
    order); batch norm statistics come from the first `stats_count` examples.
    """
    h = x
    for block in range(len(weights) // 4):
        kernel, bias, gamma, beta = weights[4 * block: 4 * block + 4]
        h = tf.nn.conv2d(h, kernel, 1, "SAME") + bias
        mean, variance = tf.nn.moments(h[:stats_count], axes=[0, 1, 2])
        h = (h - mean) * tf.math.rsqrt(variance + EPSILON) * gamma + beta
        h = tf.nn.max_pool2d(tf.nn.relu(h), 2, 2, "VALID")
    return tf.reshape(h, [tf.shape(h)[0], -1])


class HandWrittenConvMAML:
    """MAML for conv-4 over a Python loop of tasks inside one tf.function (the common way).

    `weights` is polytask's theta in its order: per block conv kernel, conv bias, batch-norm
    gamma, beta; then the output kernel and bias.
    """

    def __init__(self, weights: list[tf.Tensor], inner_lr: float, ways: int, second_order: bool):
        self.weights = [tf.Variable(w) for w in weights]
        self.inner_lr, self.ways, self.second_order = inner_lr, ways, second_order
        self.optimizer = tf.keras.optimizers.Adam(1e-3)
        self.optimizer.build(self.weights)
        self.step = tf.function(self._step)

    @staticmethod
    def forward(weights, x, stats_count):
        features = conv4_features(weights[:-2], x, stats_count)
        return tf.matmul(features, weights[-2]) + weights[-1]

    def task_loss(self, weights, sx, sy, qx, qy):
        shots = sx.shape[0]
        with tf.GradientTape() as inner:
            inner.watch(weights)
            logits = self.forward(weights, sx, shots)
            support = tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(sy, logits))
        grads = inner.gradient(support, weights)
        if not self.second_order:
            grads = [tf.stop_gradient(g) for g in grads]
        fast = [w - self.inner_lr * g for w, g in zip(weights, grads)]
        logits = self.forward(fast, tf.concat([sx, qx], 0), shots)[shots:]
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(qy, logits))

    def meta_gradients(self, sx, sy, qx, qy):
        tasks = sx.shape[0]
        with tf.GradientTape() as outer:
            total = 0.0
            for t in range(tasks):  # unrolled: one copy of the inner loop per task
                total += self.task_loss(self.weights, sx[t], sy[t], qx[t], qy[t])
            loss = total / tasks
        return loss, outer.gradient(loss, self.weights)

    def _step(self, sx, sy, qx, qy):
        loss, grads = self.meta_gradients(sx, sy, qx, qy)
        self.optimizer.apply_gradients(zip(grads, self.weights))
        return loss


def seconds_per_call(fn, calls: int = 20) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(calls):
        out = fn()
    _ = [float(tf.reduce_sum(o)) for o in tf.nest.flatten(out)]
    return (time.perf_counter() - start) / calls


def setup(ways: int, order: str):
    loaded = load_spec(SPECS[ways])
    program = compile_program(loaded, strategy=create_strategy("one_device"))
    inner = program.structure.inner
    assert inner.steps == 1 and program.structure.algorithm == "maml"
    theta, _ = program.parameters.read()
    names = program.parameters.theta_names
    assert [n.split("/")[-1] for n in names] == ["kernel", "bias", "gamma", "beta"] * 4 + ["kernel", "bias"], names
    hand = HandWrittenConvMAML([tf.identity(theta[n]) for n in names], inner.learning_rate,
                               ways, second_order=order == "second")
    first_order = order == "first"
    return program, names, hand, first_order


def profile(program, batch, iterations: int) -> None:
    """Where the time goes: grouped vs per-task convolutions, forward pass, episode drawing."""
    tasks = int(batch["support_x"].shape[0])
    joint = tf.concat([batch["support_x"], batch["query_x"]], 1)  # [T, B, 28, 28, 1]
    examples = int(joint.shape[1])
    print(f"  profile (meta-batch {tasks}, {examples} images per task), ms per call:")
    for size, channels in ((28, 1), (14, 32), (7, 32), (3, 32)):
        x = tf.random.normal([examples, size, size, tasks * channels])
        kernels = tf.random.normal([tasks, 3, 3, channels, 32])

        @tf.function
        def grouped(x, kernels, channels=channels):
            with tf.GradientTape() as tape:
                tape.watch([x, kernels])
                k = tf.reshape(tf.transpose(kernels, [1, 2, 3, 0, 4]), [3, 3, channels, tasks * 32])
                loss = tf.reduce_sum(tf.square(tf.nn.conv2d(x, k, 1, "SAME")))
            return tape.gradient(loss, [x, kernels])

        @tf.function
        def looped(x, kernels, channels=channels):
            with tf.GradientTape() as tape:
                tape.watch([x, kernels])
                parts = tf.split(x, tasks, axis=-1)
                y = tf.concat([tf.nn.conv2d(parts[t], kernels[t], 1, "SAME") for t in range(tasks)], -1)
                loss = tf.reduce_sum(tf.square(y))
            return tape.gradient(loss, [x, kernels])

        g, lp = seconds_per_call(lambda: grouped(x, kernels)), seconds_per_call(lambda: looped(x, kernels))
        print(f"    conv {size}x{size}x{channels}->32, fwd+bwd: grouped {g * 1e3:7.2f}   "
              f"per-task loop {lp * 1e3:7.2f}   (grouped/loop {g / lp:4.2f})")
    theta, extra = program.parameters.read()
    from polytask.compiler.meta.functional import tile_params

    forward = tf.function(lambda: program.model(tile_params(theta, tasks), joint,
                                                stats_count=int(batch["support_x"].shape[1])))
    draw = tf.function(lambda i: program.sampler.sample("train", i, tasks))
    gradients = tf.function(lambda: program._gradients(theta, extra, batch))
    print(f"    forward pass, all tasks:         {seconds_per_call(forward) * 1e3:8.2f}")
    op_profile(gradients)
    print(f"    meta-gradient (fixed batch):     {seconds_per_call(gradients) * 1e3:8.2f}")
    print(f"    drawing one episode batch:       "
          f"{seconds_per_call(lambda: draw(tf.constant(3, tf.int64))) * 1e3:8.2f}")


def op_profile(fn, calls: int = 10, top: int = 12) -> None:
    """TensorFlow's profiler on `calls` calls of `fn`: kernel time per call by op type (all threads)."""
    import collections
    import tempfile

    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    fn()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(calls):
            out = fn()
        _ = [float(tf.reduce_sum(o)) for o in tf.nest.flatten(out)]
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        space.ParseFromString(next(Path(logdir).rglob("*.xplane.pb")).read_bytes())
    by_op: collections.Counter = collections.Counter()
    for plane in space.planes:
        if not plane.name.endswith("/host:CPU"):
            continue
        names = {key: meta.name for key, meta in plane.event_metadata.items()}
        for line in plane.lines:
            if line.name.startswith("tf_Compute"):
                for event in line.events:
                    name = names.get(event.metadata_id, "")
                    if ":" in name and "::" not in name:  # "<node>:<op type>", not the executor's own
                        by_op[name.rsplit(":", 1)[1]] += event.duration_ps / 1e9 / calls
    total = sum(by_op.values())
    conv = sum(v for op, v in by_op.items() if "Conv2D" in op)
    print(f"    kernel time per meta-gradient, summed over threads: {total:.1f} ms, of which "
          f"convolutions {conv:.1f} ms ({100 * conv / total:.0f}%); by op type:")
    for op, value in by_op.most_common(top):
        print(f"      {value:7.2f} ms  {100 * value / total:4.1f}%  {op}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ways", type=int, nargs="+", default=[5, 20], choices=sorted(SPECS))
    parser.add_argument("--orders", nargs="+", default=["second", "first"], choices=["second", "first"])
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"TensorFlow {tf.__version__}, Python {platform.python_version()}; load average at start "
          f"{load_before[0]:.2f}")
    for ways in args.ways:
        for order in args.orders:
            program, names, hand, first_order = setup(ways, order)
            tasks = program.meta_batch
            batches = [program.sampler.sample("train", tf.constant(i, tf.int64), tasks) for i in range(16)]
            fixed = batches[0]
            theta, extra = program.parameters.read()
            grads, _ = program._gradients(theta, extra, fixed, first_order)
            _, reference = hand.meta_gradients(fixed["support_x"], fixed["support_y"],
                                               fixed["query_x"], fixed["query_y"])
            worst = max(float(tf.reduce_max(tf.abs(grads[n] / tasks - r))) for n, r in zip(names, reference))
            scale = max(float(tf.reduce_max(tf.abs(r))) for r in reference)

            counter = {"i": 0}

            def hand_step():
                b = batches[counter["i"] % len(batches)]
                counter["i"] += 1
                return hand.step(b["support_x"], b["support_y"], b["query_x"], b["query_y"])

            fixed_step = fixed_batch_step(program, first_order)

            per_call = program.steps_per_call
            # The program's own step (what `train_steps` runs) with the order forced.
            order_key = True if first_order else None
            program._build_train_step(order_key)

            def chunk():
                outputs, _ = program._run(per_call, order_key)
                return outputs

            chunked = f"polytask train_steps({per_call}) (polytask train)"
            results = {chunked: [], "polytask: meta-gradient + Adam, fixed batch": [],
                       "hand-written, Python task loop": []}
            for _ in range(args.repeats):
                results[chunked].append(rate(chunk, args.iterations, WARMUP, per_call))
                results["polytask: meta-gradient + Adam, fixed batch"].append(
                    rate(lambda: fixed_step(fixed), args.iterations, WARMUP))
                results["hand-written, Python task loop"].append(rate(hand_step, args.iterations, WARMUP))
            print(f"Omniglot MAML {ways}-way 1-shot, meta-batch {tasks}, {order} order, "
                  f"jit_compile {program.jit_compile}; {args.iterations} iterations x {args.repeats} "
                  f"repeats (median); max |meta-gradient difference| {worst:.1e} (largest entry {scale:.1e})")
            print_rates(results, "hand-written, Python task loop")
            if args.profile and order == args.orders[0]:
                profile(program, fixed, args.iterations)
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
