"""Sharing vs independent training as the MMoE task correlation changes (docs/multitask.md).

For each correlation and seed: examples/mmoe_high.yaml with the generator's `correlation`
(and `samples`) replaced, trained with `--baseline independent`; prints the test MSE of the
multi-task model and of each task trained alone.

    python bench/mmoe_correlation_sweep.py --correlations 0.9 -0.5 --seeds 0 1 2
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from polytask.runtime.train import train_spec  # noqa: E402
from polytask.spec.loader import load_spec  # noqa: E402

SPEC = Path(__file__).resolve().parent.parent / "examples" / "mmoe_high.yaml"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.9, -0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=1500)
    args = parser.parse_args()
    base = load_spec(SPEC)
    for correlation in args.correlations:
        for seed in args.seeds:
            dataset = base.spec.datasets["synth"]
            generator = dataset.generator.model_copy(update={"correlation": correlation})
            dataset = dataset.model_copy(update={"generator": generator, "samples": args.samples})
            spec = base.spec.model_copy(update={"datasets": {"synth": dataset}, "seed": seed})
            with tempfile.TemporaryDirectory() as out:
                report = train_spec(dataclasses.replace(base, spec=spec), out, baseline="independent", quiet=True)
            rows = {task: metrics["mse"] for task, metrics in report["baseline"]["tasks"].items()}
            print(f"correlation {correlation:+.2f} seed {seed}: " + "  ".join(
                f"{task}: multi-task {row['multi_task']['mean']:.3f} alone {row['independent']['mean']:.3f} "
                f"({100 * row['change']:+.1f}%)" for task, row in rows.items()), flush=True)


if __name__ == "__main__":
    main()
