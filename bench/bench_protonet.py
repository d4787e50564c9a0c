"""Prototypical networks on Omniglot: polytask's compiled step vs a hand-written protonet step.

examples/meta/omniglot_protonet.yaml: conv-4 with 64 filters, its N-way 1-shot episodes with
5 queries per class, one episode per step, Adam 1e-3. Both sides run in this process on
the same CPU threads, alternating, `--repeats` times; medians reported.

- polytask: `MetaProgram.train_steps(n)` (what `polytask train` runs: episodes drawn
  inside the step's graph, n steps per call), and the compiled gradient + Adam on a fixed
  pre-drawn episode (no input pipeline);
- hand-written: the protonet step as usually written in TF2 -- the conv-4 embedding of
  support and query images in one call (batch norm with the support set's statistics, as
  polytask does), class prototypes by a one-hot matmul, squared distances, softmax
  cross-entropy, Adam, inside one `tf.function`; episodes drawn beforehand on the host.

It first checks both compute the same gradient on the same episode. `--profile` prints the
forward pass alone and drawing one episode.

    python bench/bench_protonet.py [--iterations 60] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import platform
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from bench_maml import fixed_batch_step, print_rates, rate  # noqa: E402
from bench_maml_conv import WARMUP, conv4_features, seconds_per_call  # noqa: E402
from polytask.compiler.meta import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "examples" / "meta" / "omniglot_protonet.yaml"


class HandWrittenProtoNet:
    def __init__(self, weights: list[tf.Tensor], ways: int):
        self.weights = [tf.Variable(w) for w in weights]
        self.ways = ways
        self.optimizer = tf.keras.optimizers.Adam(1e-3)
        self.optimizer.build(self.weights)
        self.step = tf.function(self._step)

    def loss(self, sx, sy, qx, qy):
        """One episode: sx [S, 28, 28, 1], sy [S], qx [Q, 28, 28, 1], qy [Q]."""
        shots = sx.shape[0]
        embedded = conv4_features(self.weights, tf.concat([sx, qx], 0), shots)
        support, query = embedded[:shots], embedded[shots:]
        one_hot = tf.one_hot(sy, self.ways)
        prototypes = tf.matmul(one_hot, support, transpose_a=True) / tf.reduce_sum(one_hot, 0)[:, None]
        distances = (tf.reduce_sum(tf.square(query), 1)[:, None] - 2.0 * tf.matmul(query, prototypes, transpose_b=True)
                     + tf.reduce_sum(tf.square(prototypes), 1)[None, :])
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(qy, -distances))

    def gradients(self, sx, sy, qx, qy):
        with tf.GradientTape() as tape:
            loss = self.loss(sx, sy, qx, qy)
        return loss, tape.gradient(loss, self.weights)

    def _step(self, sx, sy, qx, qy):
        loss, grads = self.gradients(sx, sy, qx, qy)
        self.optimizer.apply_gradients(zip(grads, self.weights))
        return loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    load_before = os.getloadavg()
    program = compile_program(load_spec(SPEC), strategy=create_strategy("one_device"))
    assert program.structure.algorithm == "protonet" and program.meta_batch == 1
    ways = program.description.ways
    theta, extra = program.parameters.read()
    names = program.parameters.theta_names
    assert [n.split("/")[-1] for n in names] == ["kernel", "bias", "gamma", "beta"] * 4, names
    hand = HandWrittenProtoNet([tf.identity(theta[n]) for n in names], ways)

    batches = [program.sampler.sample("train", tf.constant(i, tf.int64), 1) for i in range(16)]
    fixed = batches[0]
    grads, _ = program._gradients(theta, extra, fixed)
    _, reference = hand.gradients(fixed["support_x"][0], fixed["support_y"][0], fixed["query_x"][0],
                                  fixed["query_y"][0])
    worst = max(float(tf.reduce_max(tf.abs(grads[n] - r))) for n, r in zip(names, reference))
    scale = max(float(tf.reduce_max(tf.abs(r))) for r in reference)

    counter = {"i": 0}

    def hand_step():
        b = batches[counter["i"] % len(batches)]
        counter["i"] += 1
        return hand.step(b["support_x"][0], b["support_y"][0], b["query_x"][0], b["query_y"][0])

    fixed_step = fixed_batch_step(program)

    per_call = program.steps_per_call

    def chunk():
        outputs, ran = program.train_steps(per_call)
        assert ran == per_call
        return outputs

    chunked = f"polytask train_steps({per_call}) (polytask train)"
    results = {chunked: [], "polytask: gradient + Adam, fixed episode": [], "hand-written protonet step": []}
    for _ in range(args.repeats):
        results[chunked].append(rate(chunk, args.iterations, WARMUP, per_call))
        results["polytask: gradient + Adam, fixed episode"].append(rate(lambda: fixed_step(fixed), args.iterations, WARMUP))
        results["hand-written protonet step"].append(rate(hand_step, args.iterations, WARMUP))

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, "
          f"TensorFlow {tf.__version__}, Python {platform.python_version()}; load average at start "
          f"{load_before[0]:.2f}, at end {os.getloadavg()[0]:.2f}")
    print(f"Omniglot protonet {ways}-way 1-shot {program.description.queries} queries, conv-4 64 filters, "
          f"jit_compile {program.jit_compile}; {args.iterations} steps x {args.repeats} repeats (median); "
          f"max |gradient difference| {worst:.1e} (largest entry {scale:.1e})")
    print_rates(results, "hand-written protonet step", "steps/s")
    if args.profile:
        joint = tf.concat([fixed["support_x"][0], fixed["query_x"][0]], 0)
        shots = int(fixed["support_x"].shape[1])
        forward = tf.function(lambda: conv4_features(hand.weights, joint, shots))
        draw = tf.function(lambda i: program.sampler.sample("train", i, 1))
        print(f"  profile, ms per call: hand-written forward pass {seconds_per_call(forward) * 1e3:.2f}; "
              f"drawing one episode {seconds_per_call(lambda: draw(tf.constant(3, tf.int64))) * 1e3:.2f}")


if __name__ == "__main__":
    main()
