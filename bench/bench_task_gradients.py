"""Benchmark: the T per-task gradients of a hard-sharing trunk, three ways, at T = 2, 8, 32.

What issue 9's speed goal is about, without the weighting's own combination step: one
graph call computes the [T, P] per-task gradients of the shared trunk on a batch, either

- `batched`: what `polytask train` runs (compiler/multitask/task_gradients.py): the heads'
  backward pass once, then the trunk once more on the batch laid out per task with a
  parameter copy per task, and one batched backward pass;
- `pfor`: one `tape.jacobian(..., experimental_use_pfor=True)` of the T surrogates (what
  polytask ran before, and still runs where the batched form does not apply);
- `loop`: one `tape.gradient` per task in a Python loop, the usual way.

Same problem as bench_weighting_speed.py (npz table with 32 features, trunk 32-64-64, a
dense-16 head per task, batch 256). The three run interleaved in rounds in one process, and
each way's time is its fastest block of calls on pre-fetched batches.

    python bench/bench_task_gradients.py [--tasks 2 8 32] [--calls 20] [--rounds 7]
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

WAYS = ("batched", "pfor", "loop")


def per_task_gradients_fn(program, way: str):
    """A compiled (x, labels, task) -> [T, P] per-task trunk gradients, computed `way`."""

    def compute(x, labels, task):
        program.task_gradients = way
        return program.shared_task_gradients(x, labels, task)

    return tf.function(compute, autograph=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 8, 32])
    parser.add_argument("--calls", type=int, default=20, help="calls per timed block")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"tf {tf.__version__}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}, "
          "batch 256, trunk 32-64-64, head 16 + 1 per task")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for tasks in args.tasks:
            folder = Path(tmp) / str(tasks)
            folder.mkdir()
            spec_path = write_problem(folder, tasks)
            raw = yaml.safe_load(spec_path.read_text())
            raw["training"]["weighting"] = ["pcgrad"]
            spec_path.write_text(yaml.safe_dump(raw, sort_keys=False))
            program = compile_program(load_spec(spec_path, check_data=False), strategy=create_strategy("one_device"))
            assert program.trunk_gradients is not None, "the batched way does not apply to this trunk"
            batches = [program.next_batch() for _ in range(8)]
            fns = {way: per_task_gradients_fn(program, way) for way in WAYS}
            for fn in fns.values():
                for batch in batches[:2]:
                    fn(*batch).numpy()
            best: dict[str, float] = {}
            for _ in range(args.rounds):
                for way, fn in fns.items():
                    start = time.perf_counter()
                    for i in range(args.calls):
                        out = fn(*batches[i % len(batches)])
                    out.numpy()
                    best[way] = min(best.get(way, float("inf")), (time.perf_counter() - start) / args.calls * 1000)
            rows.append((tasks, best))
            print(f"  T={tasks:<3} " + "  ".join(f"{way} {best[way]:.3f} ms" for way in WAYS), flush=True)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    print("\n| T | batched ms | pfor ms | loop ms | loop / batched | pfor / batched |")
    print("|---|---|---|---|---|---|")
    for tasks, best in rows:
        print(f"| {tasks} | {best['batched']:.3f} | {best['pfor']:.3f} | {best['loop']:.3f} | "
              f"{best['loop'] / best['batched']:.2f}x | {best['pfor'] / best['batched']:.2f}x |")


if __name__ == "__main__":
    main()
