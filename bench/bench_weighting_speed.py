"""Benchmark: step time of every weighting relative to equal weighting at T = 2, 8, 32 tasks.

Same problem as bench_many_tasks.py (an npz table with 32 features, one regression target
per task), hard sharing 32->64->64 with a dense-16 head per task, global batch 256 at every
T. Each method is compiled on its own program; then the programs of one T run in
interleaved rounds (one block of steps each per round, so load from other jobs hits every
method alike) and a method's step time is its fastest block on pre-fetched batches. Besides the
registered methods, `pcgrad[loop]` is PCGrad with per-task gradients the usual way -- one
tape.gradient per task in a Python loop -- and `pcgrad[pfor]` with one vectorised Jacobian
(tape.jacobian with pfor), against what polytask runs (`pcgrad`: one batched backward pass
over the batch laid out per task, compiler/multitask/task_gradients.py). PCGrad's own T^2
sequential projections are the same in all three, so `mgda[loop]` / `mgda[pfor]` vs `mgda`
(whose combination is a small T x T solve) isolate the cost of the per-task gradients. The
last lines are the speed-ups of polytask's per-task gradients over the other two ways.

    python bench/bench_weighting_speed.py [--tasks 2 8 32] [--steps 30] [--methods equal pcgrad ...]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf  # noqa: E402
import yaml  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_many_tasks import write_problem  # noqa: E402

from polytask.compiler.compile import compile_program  # noqa: E402
from polytask.runtime.strategy import create_strategy  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402
from polytask.spec.registry import WEIGHTINGS  # noqa: E402

LOOP = "[loop]"  # suffix: the same method with per-task gradients from a Python loop
PFOR = "[pfor]"  # suffix: the same method with per-task gradients from a pfor Jacobian
VARIANTS = {LOOP: "loop", PFOR: "pfor"}


def block_ms(fn, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        out = fn()
    out["loss"].numpy()
    return (time.perf_counter() - start) / steps * 1000


def compiled_step(spec_path: Path, method: str, strategy):
    """A warmed-up zero-argument step of `method` on pre-fetched batches."""
    raw = yaml.safe_load(spec_path.read_text())
    raw["training"]["weighting"] = [method.split("[")[0]]
    # Every method on the same rows; auto_lambda needs a validation split to learn its weights on.
    raw["datasets"]["table"]["split"] = {"train": 0.8, "validation": 0.1, "test": 0.1}
    path = spec_path.with_name(f"spec-{method.replace('[', '-').replace(']', '')}.yaml")
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    program = compile_program(load_spec(path, check_data=False), strategy=strategy)
    for suffix, mode in VARIANTS.items():
        if method.endswith(suffix):
            program.task_gradients = mode
    batches = [program.next_batch() for _ in range(16)]
    for b in batches[:3]:
        program._step(b)["loss"].numpy()
    cycle = iter(range(10**9))
    return lambda: program._step(batches[next(cycle) % len(batches)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--steps", type=int, default=30, help="steps per block")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered weighting")
    args = parser.parse_args()
    methods = args.methods or WEIGHTINGS.names()
    methods = ["equal"] + [m for m in methods if m != "equal"]
    methods += [f"{m}{suffix}" for suffix in VARIANTS for m in ("pcgrad", "mgda")
                if m in methods and f"{m}{suffix}" not in methods]
    strategy = create_strategy("one_device")
    print(f"tf {tf.__version__}, {os.cpu_count()} CPUs, batch 256, trunk 32-64-64, head 16 + 1 per task")
    table = {}
    with tempfile.TemporaryDirectory() as tmp:
        for tasks in args.tasks:
            folder = Path(tmp) / str(tasks)
            folder.mkdir()
            spec = write_problem(folder, tasks)
            steps = {method: compiled_step(spec, method, strategy) for method in methods}
            for _ in range(args.rounds):
                for method, fn in steps.items():
                    table[method, tasks] = min(table.get((method, tasks), float("inf")), block_ms(fn, args.steps))
            for method in methods:
                print(f"  T={tasks:<3} {method:<14} {table[method, tasks]:8.2f} ms", flush=True)
    print(f"\n| method | " + " | ".join(f"T={t} ms (x equal)" for t in args.tasks) + " |")
    print("|---|" + "---|" * len(args.tasks))
    for method in methods:
        cells = [f"{table[method, t]:.2f} ({table[method, t] / table['equal', t]:.2f}x)" for t in args.tasks]
        print(f"| {method} | " + " | ".join(cells) + " |")
    for method in [m for m in methods if m.endswith(tuple(VARIANTS))]:
        base, way = method.split("[")[0], VARIANTS["[" + method.split("[")[1]]
        for t in args.tasks:
            print(f"polytask's per-task gradients vs {way} ({base}), T={t}: "
                  f"{table[method, t] / table[base, t]:.2f}x faster")


if __name__ == "__main__":
    main()
