"""Cost of `polytask affinity` vs plain training for the same number of steps (T <= 8 tasks).

    python bench/bench_affinity.py [--tasks 2 4 8] [--steps 300] [--every 1 5]

MMoE synthetic tasks (100-d input, 64-32 shared trunk, 16-unit heads, batch 128): for each
T, steady-state seconds per step of (a) the training step alone and (b) the affinity run's
step (the same training step plus, every `every` steps, the lookahead probe on that batch
and its host transfer), both after a warm-up that traces the graphs. Also the one-off
probe tracing time. Prints the ratio b / a; the goal is <= ~1.5x.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402


def spec(tasks: int) -> dict:
    return {
        "polytask": 1, "name": f"bench-affinity-{tasks}", "seed": 0,
        "datasets": {"synth": {"source": "synthetic", "samples": 4000,
                               "generator": {"kind": "mmoe", "tasks": tasks, "input_dim": 100, "correlation": 0.5}}},
        "tasks": {f"t{i}": {"dataset": "synth", "target": f"task_{i}", "loss": "mse"} for i in range(tasks)},
        "structure": {"sharing": "hard",
                      "trunk": [{"dense": {"units": 64, "activation": "relu"}}, {"dense": {"units": 32, "activation": "relu"}}],
                      "head": [{"dense": {"units": 16, "activation": "relu"}}]},
        "training": {"steps": 1000, "batch_size": 128, "optimizer": {"adam": {"learning_rate": 0.001}}},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--every", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    from polytask.compiler.affinity.lookahead import LookaheadProbe, affinity_from
    from polytask.compiler.compile import compile_program
    from polytask.runtime.strategy import create_strategy
    from polytask.spec.loader import load_spec

    strategy = create_strategy("one_device", "float32")
    print(f"load average at start: {os.getloadavg()[0]:.1f} (2 cores shared with other jobs: numbers are noisy)")
    for tasks in args.tasks:
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "spec.yaml"
            path.write_text(yaml.safe_dump(spec(tasks), sort_keys=False), encoding="utf-8")
            loaded = load_spec(path, check_data=True)
            program = compile_program(loaded, strategy=strategy, seed=0, steps=1000)
            probe = LookaheadProbe(program)
            t0 = time.perf_counter()
            out = probe(program.next_batch(), 1e-3)
            [o.numpy() for o in out]
            trace = time.perf_counter() - t0

            def plain(n: int) -> float:
                start = time.perf_counter()
                for _ in range(n):
                    program.train_on(program.next_batch())
                return (time.perf_counter() - start) / n

            def with_probe(n: int, every: int) -> float:
                start = time.perf_counter()
                for step in range(n):
                    batch = program.next_batch()
                    if step % every == 0:
                        losses, after, counts = probe(batch, 1e-3)
                        affinity_from(losses.numpy(), after.numpy(), counts.numpy())
                    program.train_on(batch)
                return (time.perf_counter() - start) / n

            plain(args.warmup)
            with_probe(args.warmup, 1)
            # Rounds of plain / probe / plain, interleaved: each ratio is taken against the mean of
            # the two plain measurements around it, and the median over rounds is reported.
            ratios: dict = {every: [] for every in args.every}
            costs: dict = {every: [] for every in args.every}
            bases = []
            for _ in range(args.rounds):
                for every in args.every:
                    before = plain(args.steps)
                    cost = with_probe(args.steps, every)
                    after = plain(args.steps)
                    bases += [before, after]
                    costs[every].append(cost)
                    ratios[every].append(cost / ((before + after) / 2))
            line = f"T={tasks}: plain {1000 * statistics.median(bases):.2f} ms/step"
            for every in args.every:
                line += (f" | every {every}: {1000 * statistics.median(costs[every]):.2f} ms/step "
                         f"(median ratio {statistics.median(ratios[every]):.2f}x, "
                         f"range {min(ratios[every]):.2f}-{max(ratios[every]):.2f})")
            print(line + f" | probe tracing {trace:.1f} s", flush=True)

if __name__ == "__main__":
    main()
