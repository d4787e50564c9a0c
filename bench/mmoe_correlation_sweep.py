"""Sharing patterns vs independent training as the MMoE task correlation changes (docs/multitask.md).

For each correlation and seed: the MMoE synthetic data of examples/mmoe_high.yaml with the
generator's `correlation` (and `samples`) replaced, trained with each sharing pattern in
`--patterns` (hard: the example's shared bottom; mmoe, cgc, cross_stitch: the `structure`
of examples/<pattern>.yaml), and each task trained alone (the hard network on one task,
`--baseline independent`). Prints the test MSE of every run, then per correlation the mean
over seeds and each pattern's mean relative change against hard sharing: the MMoE paper's
claim (Ma et al. 2018, Fig. 4) is that the soft patterns' advantage grows as correlation falls.

    python bench/mmoe_correlation_sweep.py --correlations 0.9 0.5 -0.5 --seeds 0 1 2
    python bench/mmoe_correlation_sweep.py --correlations 0.5 --seeds 0 --steps 20   # a smoke run

The full sweep trains (patterns + tasks) x correlations x seeds networks: run it on a quiet machine.
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

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SPEC = EXAMPLES / "mmoe_high.yaml"
PATTERNS = ["hard", "mmoe", "cgc", "cross_stitch"]


def structure_of(pattern: str, base):
    return base.spec.structure if pattern == "hard" else load_spec(EXAMPLES / f"{pattern}.yaml").spec.structure


def run(base, pattern: str, correlation: float, seed: int, samples: int, steps) -> dict:
    """{task: test mse} of one pattern, plus {task: test mse alone} for hard (its independent baseline)."""
    dataset = base.spec.datasets["synth"]
    generator = dataset.generator.model_copy(update={"correlation": correlation})
    dataset = dataset.model_copy(update={"generator": generator, "samples": samples})
    spec = base.spec.model_copy(update={"datasets": {"synth": dataset}, "seed": seed,
                                        "structure": structure_of(pattern, base)})
    baseline = "independent" if pattern == "hard" else None
    with tempfile.TemporaryDirectory() as out:
        report = train_spec(dataclasses.replace(base, spec=spec), out, baseline=baseline, steps=steps, quiet=True)
    tasks = list(spec.tasks)
    result = {pattern: {t: report["metrics"]["test"][f"{t}/mse"] for t in tasks}}
    if baseline:
        result["independent"] = {t: rows["mse"]["independent"]["mean"] for t, rows in report["baseline"]["tasks"].items()}
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--correlations", type=float, nargs="+", default=[0.9, 0.5, -0.5])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--samples", type=int, default=1500)
    parser.add_argument("--patterns", nargs="+", default=PATTERNS, choices=PATTERNS)
    parser.add_argument("--steps", type=int, default=None, help="override training.steps (smoke runs)")
    args = parser.parse_args()
    patterns = ["hard"] + [p for p in args.patterns if p != "hard"]  # hard also trains the baseline
    base = load_spec(SPEC)
    summary: dict = {}
    for correlation in args.correlations:
        for seed in args.seeds:
            results: dict = {}
            for pattern in patterns:
                results.update(run(base, pattern, correlation, seed, args.samples, args.steps))
            for name, mse in results.items():
                summary.setdefault(correlation, {}).setdefault(name, []).append(sum(mse.values()) / len(mse))
            print(f"correlation {correlation:+.2f} seed {seed}: " + "  ".join(
                f"{name} " + "/".join(f"{v:.3f}" for v in mse.values()) for name, mse in results.items()), flush=True)
    print("\nmean test MSE over tasks and seeds (relative change against hard sharing):")
    for correlation, rows in summary.items():
        hard = sum(rows["hard"]) / len(rows["hard"])
        print(f"  correlation {correlation:+.2f}: " + "  ".join(
            f"{name} {sum(v) / len(v):.3f} ({100 * (sum(v) / len(v) - hard) / hard:+.1f}%)" for name, v in rows.items()))


if __name__ == "__main__":
    main()
