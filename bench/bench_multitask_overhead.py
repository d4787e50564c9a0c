"""Benchmark 1: polytask's compiled hard-sharing train step vs a hand-written Keras/TF step.

Same process, same layers (examples/digits_hard.yaml: trunk 64->128->dropout->64, one
dense-32 head per task, 3 tasks), same optimizer (Adam 1e-3), same batches (64 examples
of mixed tasks drawn once from polytask's pipeline and fed to both). The hand-written model
is what a Keras user writes for mixed-task batches: Keras Dense layers, one head per task,
`tf.boolean_mask` to route each task's rows to its head, Keras losses, one tf.function.
Reported: median step time over repeated blocks, timed alternately (data pipeline excluded
on both sides; it is timed separately), with and without XLA.

    python bench/bench_multitask_overhead.py [--steps 300] [--repeats 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from polytask.compiler.compile import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "examples" / "digits_hard.yaml"


def hand_written(program, jit: bool):
    """The idiomatic Keras version of the same network and loss."""
    keras.utils.set_random_seed(1)
    mean, std = program.data.mean, program.data.std
    trunk = keras.Sequential([keras.layers.Dense(128, activation="relu"), keras.layers.Dropout(0.2),
                              keras.layers.Dense(64, activation="relu")])
    units = [program.plan.tasks[t].output_units for t in program.tasks]
    heads = [keras.Sequential([keras.layers.Dense(32, activation="relu"), keras.layers.Dense(u)]) for u in units]
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    losses = [ce if program.plan.tasks[t].loss == "cross_entropy" else bce for t in program.tasks]
    x0 = tf.zeros((1, 64))
    h0 = trunk(x0)
    for head in heads:
        head(h0)
    variables = trunk.trainable_variables + [v for head in heads for v in head.trainable_variables]
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(variables)

    @tf.function(jit_compile=jit)
    def step(x, y, task):
        with tf.GradientTape() as tape:
            h = trunk((x - mean) / std, training=True)
            total = 0.0
            for i, head in enumerate(heads):
                rows = tf.equal(task, i)
                out = head(tf.boolean_mask(h, rows))
                target = tf.boolean_mask(y[:, 0], rows)
                if losses[i] is bce:
                    target = target[:, None]
                total += losses[i](target, out)
        grads = tape.gradient(total, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return total

    return step


def first_call(fn, batch) -> float:
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn(*batch))
    return time.perf_counter() - start


def interleaved(fns, batches, steps: int, repeats: int) -> list[float]:
    """Median ms per step of each fn, timing their blocks alternately (fair on a shared, loaded machine)."""
    for fn in fns:
        for b in batches[:20]:
            fn(*b)
    blocks = [[] for _ in fns]
    for _ in range(repeats):
        for k, fn in enumerate(fns):
            start = time.perf_counter()
            for i in range(steps):
                out = fn(*batches[i % len(batches)])
            tf.nest.map_structure(lambda t: t.numpy(), out)
            blocks[k].append((time.perf_counter() - start) / steps * 1000)
    return [(statistics.median(b), min(b)) for b in blocks]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    strategy = create_strategy("one_device")
    loaded = load_spec(SPEC)
    print(f"tf {tf.__version__}, keras {keras.__version__}, {os.cpu_count()} CPUs; spec {SPEC.name}")
    rows = []
    for jit in (False, True):
        program = compile_program(loaded, strategy=strategy, jit_compile=jit)
        batches = [tuple(t for t in program.next_batch()) for _ in range(64)]
        fetch_start = time.perf_counter()
        for _ in range(args.steps):
            program.next_batch()
        fetch_ms = (time.perf_counter() - fetch_start) / args.steps * 1000
        ours = lambda x, y, t: program._step((x, y, t))  # noqa: E731
        theirs = hand_written(program, jit)
        first_ours, first_theirs = first_call(ours, batches[0]), first_call(theirs, batches[0])
        (med_ours, min_ours), (med_theirs, min_theirs) = interleaved([ours, theirs], batches, args.steps, args.repeats)
        rows.append((jit, med_ours, med_theirs, min_ours, min_theirs, first_ours, first_theirs, fetch_ms))
    print("step ms: median / fastest of the interleaved blocks; overhead = polytask / hand - 1")
    print(f"{'xla':<6} {'polytask ms':>15} {'hand ms':>15} {'overhead':>17} {'build s (pt/hand)':>18} {'pipeline ms':>12}")
    for jit, a, b, amin, bmin, fa, fb, fetch in rows:
        print(f"{str(jit):<6} {a:>7.3f} / {amin:<5.3f} {b:>7.3f} / {bmin:<5.3f} {100 * (a / b - 1):>+7.1f}% / {100 * (amin / bmin - 1):>+6.1f}%"
              f" {fa:>8.2f} / {fb:<7.2f} {fetch:>10.3f}")


if __name__ == "__main__":
    main()
