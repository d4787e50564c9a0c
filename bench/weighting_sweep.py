"""Every loss weighting x seeds on three multi-task problems, scored by Delta_m against each task alone.

    python bench/weighting_sweep.py                                  # all 25 methods, 3 seeds, 3 problems
    python bench/weighting_sweep.py --problems digits_hard --seeds 2 --steps 300 --methods equal pcgrad
    python bench/weighting_sweep.py --write                          # also update docs/weighting.md

Problems (each an example spec, trained with `weighting: [method]` and nothing else changed):
- digits_hard: examples/digits_hard.yaml (scikit-learn digits; digit / odd / high);
- mmoe_0.5: examples/mmoe_low.yaml with the label correlation set to 0.5 (Ma et al. 2018);
- gradnorm_toy: examples/gradnorm_toy_equal.yaml (Chen et al. 2018, tasks of scale 1 and 100).
Per problem and seed the tasks are first trained alone (`--baseline independent`, same network,
steps and inputs); every method's multi-task run of that seed is compared with them on each
task's primary (first) test metric:
    Delta_m = (1/T) sum_t (-1)^{l_t} (M_t - M_t^single) / M_t^single x 100%   (l_t = 1: lower is better)
(runtime/baseline.py computes it, as `polytask train --baseline independent --seeds N` does),
then mean +/- 95% CI (Student t) over the seeds. Positive Delta_m: the multi-task run beats the
tasks trained alone.
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import yaml  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DOC = REPO / "docs" / "weighting.md"
HEADING = "## Weighting sweep (`bench/weighting_sweep.py`)"


def _mmoe_half(raw: dict) -> dict:
    raw["datasets"]["synth"]["generator"]["correlation"] = 0.5
    return raw


PROBLEMS = {
    "digits_hard": ("digits_hard.yaml", None),
    "mmoe_0.5": ("mmoe_low.yaml", _mmoe_half),
    "gradnorm_toy": ("gradnorm_toy_equal.yaml", None),
}


def problem_spec(name: str, method: str, folder: Path) -> Path:
    """The problem's example spec with `weighting: [method]`, data paths made absolute."""
    file, edit = PROBLEMS[name]
    raw = yaml.safe_load((EXAMPLES / file).read_text())
    if edit:
        raw = edit(raw)
    for dataset in raw["datasets"].values():
        if "path" in dataset:
            dataset["path"] = str((EXAMPLES / dataset["path"]).resolve())
    raw["name"] = f"{raw['name']}-{method}"
    raw["training"]["weighting"] = [method]
    path = folder / f"{name}-{method}.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sweep(problem: str, methods: list, seeds: list, steps, folder: Path, log) -> dict:
    """{method: [per-seed result]}; each seed's tasks are trained alone once, with the first method's run."""
    from polytask.runtime.baseline import seed_run
    from polytask.runtime.train import train_spec, with_overrides
    from polytask.spec.loader import load_spec

    results: dict = {m: [] for m in methods}
    for seed in seeds:
        first = None
        for method in methods:
            spec, run_dir = problem_spec(problem, method, folder), folder / f"{problem}-{method}-seed{seed}"
            start = time.perf_counter()
            if first is None:  # the multi-task run plus every task alone
                first = seed_run(str(spec), str(run_dir), seed=seed, kinds=("independent",), steps=steps, groups=None)
                result = first
            else:
                loaded = with_overrides(load_spec(str(spec), check_data=True), seed=seed, steps=steps)
                test = train_spec(loaded, str(run_dir), quiet=True)["metrics"].get("test") or {}
                result = {"seed": seed, "metrics": first["metrics"], "independent": first["independent"],
                          "multi_task": {t: {m: test.get(f"{t}/{m}") for m in names}
                                         for t, names in first["metrics"].items()}}
            results[method].append(result)
            log(f"{problem} seed {seed} {method}: {time.perf_counter() - start:.1f} s")
    return results


def table(problem: str, results: dict) -> list[str]:
    from polytask.runtime.baseline import delta_m, higher_is_better, summary

    first_runs = next(iter(results.values()))  # every method's results carry the same tasks-alone runs
    primary = {t: m[0] for t, m in first_runs[0]["metrics"].items()}
    higher = {t: higher_is_better(m) for t, m in primary.items()}

    def cell(values, digits=4):
        s = summary(values)
        return f"{s['mean']:.{digits}f}" + (f" +/- {s['ci95']:.{digits}f}" if s["ci95"] is not None else "")

    alone = [r["independent"] for r in first_runs]
    lines = [f"| {problem}: method | Delta_m % | " + " | ".join(f"{t} {m}" for t, m in primary.items()) + " |",
             "|---|---|" + "---|" * len(primary),
             "| (each task alone) | 0 | " + " | ".join(cell([a[t][m] for a in alone]) for t, m in primary.items())
             + " |"]
    rows = []
    for method, per_seed in results.items():
        dm = delta_m([r["multi_task"] for r in per_seed], [r["independent"] for r in per_seed], primary, higher)
        metrics = " | ".join(cell([r["multi_task"][t][m] for r in per_seed]) for t, m in primary.items())
        rows.append((summary(dm)["mean"], f"| {method} | {cell(dm, 2)} | {metrics} |"))
    lines += [line for _, line in sorted(rows, key=lambda row: -row[0])]
    return lines


def main() -> None:
    from polytask.spec.registry import WEIGHTINGS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--problems", nargs="+", choices=list(PROBLEMS), default=list(PROBLEMS))
    parser.add_argument("--methods", nargs="+", default=None, help="default: every registered weighting")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=None, help="override each problem's training.steps")
    parser.add_argument("--write", action="store_true", help=f"update the '{HEADING}' section of {DOC}")
    args = parser.parse_args()
    methods = args.methods or WEIGHTINGS.names()
    methods = ["equal"] + [m for m in methods if m != "equal"]
    seeds = list(range(args.seeds))
    started, load = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), os.getloadavg()[0]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for problem in args.problems:
            folder = Path(tmp) / problem
            folder.mkdir()
            results = sweep(problem, methods, seeds, args.steps, folder, lambda m: print(m, file=sys.stderr, flush=True))
            lines = table(problem, results)
            out += lines + [""]
            print("\n".join(lines), flush=True)
    command = "python bench/weighting_sweep.py " + " ".join(sys.argv[1:])
    text = (f"{HEADING}\n\n`{command.strip()}`: {len(methods)} methods x {len(seeds)} seeds "
            f"({', '.join(map(str, seeds))}); steps: {args.steps or 'each example spec’s own'}. "
            f"Started {started}, {platform.python_implementation()} {platform.python_version()}, "
            f"{os.cpu_count()} CPUs, load average {load:.1f} at the start. Rows sorted by Delta_m; "
            "each cell is the mean +/- 95% CI half-width over seeds of the task's primary test metric.\n\n"
            + "\n".join(out))
    if args.write:
        doc = DOC.read_text()
        if HEADING in doc:
            before, _, rest = doc.partition(HEADING)
            after = rest[rest.find("\n## "):] if "\n## " in rest else "\n"
            doc = before + text + after
        else:
            doc = doc.rstrip("\n") + "\n\n" + text
        DOC.write_text(doc)
        print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
