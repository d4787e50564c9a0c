"""Baselines a user can trust: multi-task vs each task alone (and vs suggested groups) over seeds.

    polytask train SPEC --baseline independent --seeds 3 [--parallel 2]
    polytask train SPEC --baseline groups --groups-from runs/affinity --seeds 3

For every seed s..s+N-1 (`seed_run`): the multi-task run, each task trained alone (same
architecture, steps, batch size and inputs; equal weighting), and with `groups` each
suggested group trained as its own multi-task run (a task's number comes from the group
that serves it; a group of one is the task alone). Then, per task and metric on the test
split (`compare`):
- mean +/- 95% CI (Student t, n - 1 degrees of freedom) of each arm over the seeds;
- the relative change of the means, and the paired difference (same seed) with its CI;
  the verdict is "helps" or "hurts" only when that interval excludes 0, else
  "no detectable difference";
- Delta_m = (1/T) sum_t (-1)^{l_t} (M_t - M_t^single) / M_t^single x 100% (l_t = 1 where
  lower is better) on each task's primary (first) metric, per seed, then mean +/- CI.
Per-seed runs live in RUN_DIR/seed-<s>/ (one run directory each, with baseline/<task>/ and
groups/group<k>/ inside); RUN_DIR/report.json holds the comparison.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

from polytask.errors import RunError
from polytask.runtime.rundir import GROUPS_DIR

KINDS = ("independent", "groups")
HELPS, HURTS, UNCLEAR = "helps", "hurts", "no detectable difference"


def seed_dir(root: Path, seed: int) -> Path:
    return Path(root) / f"seed-{seed}"


# --------------------------------------------------------------------------- statistics


def t_quantile(level: float, dof: int) -> float:
    from scipy.stats import t

    return float(t.ppf(level, dof))


def summary(values) -> dict:
    """{"mean", "ci95", "values"}: ci95 is the half-width h of mean +/- h (None below 2 values)."""
    import numpy as np

    array = np.asarray([v for v in values], dtype=np.float64)
    mean = float(array.mean()) if len(array) else None
    ci = None
    if len(array) >= 2:
        ci = t_quantile(0.975, len(array) - 1) * float(array.std(ddof=1)) / math.sqrt(len(array))
    return {"mean": mean, "ci95": ci, "values": [float(v) for v in array]}


def verdict(difference: dict, higher_is_better: bool) -> str:
    """helps/hurts when the paired difference's CI excludes 0, else no detectable difference."""
    mean, ci = difference["mean"], difference["ci95"]
    if mean is None or ci is None or not math.isfinite(ci) or abs(mean) <= ci:
        return UNCLEAR
    return HELPS if (mean > 0) == higher_is_better else HURTS


def relative(a: Optional[float], b: Optional[float]) -> Optional[float]:
    return None if a is None or b is None or b == 0 else (a - b) / abs(b)


def delta_m(arm: list, single: list, primary: dict, higher: dict) -> list:
    """Delta_m (%) per seed: arm and single are per-seed {task: {metric: value}}."""
    out = []
    for mine, alone in zip(arm, single):
        terms = []
        for task, metric in primary.items():
            m, s = mine[task][metric], alone[task][metric]
            sign = 1.0 if higher[task] else -1.0
            terms.append(sign * (m - s) / s * 100.0 if s else float("nan"))
        out.append(sum(terms) / len(terms))
    return out


# --------------------------------------------------------------------------- one seed


def _task_metrics(test: dict, task: str, metrics: list) -> dict:
    return {m: test.get(f"{task}/{m}") for m in metrics}


def task_metric_names(task_plan) -> list:
    return list(task_plan.metrics) or ["loss"]


def seed_run(spec_path: str, run_dir: str, *, seed: int, kinds: tuple, steps: Optional[int], groups: Optional[list],
             allow_code: bool = False, strategy: Optional[str] = None, precision: Optional[str] = None,
             echo=None) -> dict:
    """Train one seed's arms into run_dir; per-arm {task: {metric: test value}} (picklable, for processes)."""
    from polytask.runtime.train import train_spec, with_overrides
    from polytask.spec.loader import load_spec

    loaded = with_overrides(load_spec(spec_path, check_data=True, allow_code=allow_code), seed=seed, steps=steps)
    report = train_spec(loaded, run_dir, allow_code=allow_code, strategy=strategy, precision=precision, quiet=True,
                        baseline=kinds[-1] if kinds else None, groups=groups, echo=echo, write_comparison=False)
    return report["baseline_runs"]


def arms(loaded, run, report: dict, *, kinds: tuple, groups: Optional[list], strategy, allow_code: bool,
         echo=None) -> dict:
    """After the multi-task run in `run`: the other arms of one seed, {arm: {task: {metric: value}}}."""
    from polytask.compiler.multitask.data import load_tables
    from polytask.compiler.plan import build_plan
    from polytask.runtime.train import train_subset

    spec = loaded.spec
    tables = load_tables(loaded, allow_code=allow_code, seed=spec.seed)
    plan = build_plan(loaded, allow_code=allow_code, column_info={n: t.info for n, t in tables.items()})
    names = {t: task_metric_names(plan.tasks[t]) for t in spec.tasks}
    multi = report["metrics"].get("test") or {}
    result = {"seed": spec.seed, "metrics": names,
              "multi_task": {t: _task_metrics(multi, t, names[t]) for t in spec.tasks}}
    if not kinds:
        return result
    alone = {}
    for task in spec.tasks:
        if echo:
            echo(f"baseline: training task '{task}' alone ({spec.training.steps} steps, seed {spec.seed})")
        test = train_subset(loaded, [task], run.baseline(task), strategy=strategy, allow_code=allow_code,
                            tables=tables, plan=plan)
        alone[task] = _task_metrics(test, task, names[task])
    result["independent"] = alone
    if "groups" in kinds:
        served = {}
        for index, group in enumerate(groups):
            members = [t for t in group["tasks"] if t in spec.tasks]
            serves = [t for t in group["serves"] if t in spec.tasks]
            if len(members) == 1:  # the same run as the task alone
                for task in serves:
                    served[task] = alone[task]
                continue
            if sorted(members) == sorted(spec.tasks):  # the same run as the multi-task one
                for task in serves:
                    served[task] = result["multi_task"][task]
                continue
            if echo:
                echo(f"baseline: training group {index + 1} ({', '.join(members)}), seed {spec.seed}")
            test = train_subset(loaded, members, run.root / GROUPS_DIR / f"group{index + 1}", strategy=strategy,
                                allow_code=allow_code, tables=tables, plan=plan)
            for task in serves:
                served[task] = _task_metrics(test, task, names[task])
        missing = [t for t in spec.tasks if t not in served]
        if missing:
            raise RunError(f"the groups do not cover task '{missing[0]}'",
                           hint="compute the groups for this spec: polytask affinity SPEC --out DIR")
        result["groups"] = served
    return result


# --------------------------------------------------------------------------- all seeds


def _seed_worker(arguments: dict) -> dict:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    return seed_run(**arguments)


def run_seeds(loaded, out, *, seeds: int, kinds: tuple, parallel: int = 1, steps: Optional[int] = None,
              seed: Optional[int] = None, groups: Optional[list] = None, allow_code: bool = False,
              strategy: Optional[str] = None, precision: Optional[str] = None, echo=None) -> list:
    """seed_run for seeds s..s+N-1 into out/seed-<s>/, `parallel` at a time in separate processes."""
    start = loaded.spec.seed if seed is None else int(seed)
    root = Path(out)
    for s in range(start, start + seeds):
        if seed_dir(root, s).exists() and any(seed_dir(root, s).iterdir()):
            raise RunError(f"{seed_dir(root, s)} already holds a run",
                           hint="choose a new --out directory (seeded runs are never overwritten)")
    jobs = [dict(spec_path=str(loaded.path), run_dir=str(seed_dir(root, s)), seed=s, kinds=tuple(kinds), steps=steps,
                 groups=groups, allow_code=allow_code, strategy=strategy, precision=precision)
            for s in range(start, start + seeds)]
    if parallel <= 1:
        results = []
        for job in jobs:
            if echo:
                echo(f"seed {job['seed']}: training ({', '.join(('multi-task',) + tuple(kinds))})")
            results.append(seed_run(**job, echo=echo))
        return results
    import concurrent.futures
    import multiprocessing

    if echo:
        echo(f"training seeds {start}..{start + seeds - 1}, {parallel} at a time in separate processes")
    with concurrent.futures.ProcessPoolExecutor(max_workers=parallel,
                                                mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_seed_worker, jobs))


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of a task's `metric` is better (a task's `loss` is lower-is-better)."""
    from polytask.spec.registry import METRICS

    return METRICS.get(metric).higher_is_better if metric != "loss" else False


def compare(per_seed: list, plan_tasks: Optional[dict] = None) -> dict:
    """The `baseline` section of report.json from per-seed results (see the module docstring)."""
    plan_tasks = plan_tasks or per_seed[0]["metrics"]
    higher = higher_is_better
    present = [a for a in ("independent", "groups") if a in per_seed[0]]
    tasks: dict = {}
    for task, metrics in plan_tasks.items():
        rows = {}
        for metric in metrics:
            good = higher(metric)
            values = {arm: [r[arm][task][metric] for r in per_seed] for arm in ["multi_task"] + present}
            if any(v is None for vs in values.values() for v in vs):
                continue
            row = {"higher_is_better": good, "multi_task": summary(values["multi_task"])}
            if "independent" in present:
                row["independent"] = summary(values["independent"])
                difference = summary([m - i for m, i in zip(values["multi_task"], values["independent"])])
                row["difference"] = {k: difference[k] for k in ("mean", "ci95")}
                row["change"] = relative(row["multi_task"]["mean"], row["independent"]["mean"])
                row["verdict"] = verdict(difference, good)
            if "groups" in present:
                row["groups"] = summary(values["groups"])
                for other, key in (("multi_task", "groups_vs_multi_task"), ("independent", "groups_vs_independent")):
                    difference = summary([g - o for g, o in zip(values["groups"], values[other])])
                    row[key] = {"difference": {k: difference[k] for k in ("mean", "ci95")},
                                "change": relative(row["groups"]["mean"], row[other]["mean"]),
                                "verdict": verdict(difference, good)}
            rows[metric] = row
        tasks[task] = rows
    out = {"kind": "+".join(present), "split": "test", "seeds": [r["seed"] for r in per_seed], "tasks": tasks}
    if "independent" in present:
        primary = {t: m[0] for t, m in plan_tasks.items()}
        good = {t: higher(m) for t, m in primary.items()}
        single = [r["independent"] for r in per_seed]
        dm = summary(delta_m([r["multi_task"] for r in per_seed], single, primary, good))
        out["delta_m"] = {"mean": dm["mean"], "ci95": dm["ci95"], "values": dm["values"],
                          "metrics": primary}
        if "groups" in present:
            dg = summary(delta_m([r["groups"] for r in per_seed], single, primary, good))
            out["groups_delta_m"] = {"mean": dg["mean"], "ci95": dg["ci95"], "values": dg["values"]}
    return out


# --------------------------------------------------------------------------- text


def _cell(stats: dict) -> str:
    if stats["mean"] is None:
        return "n/a"
    return f"{stats['mean']:.4f}" + (f" ± {stats['ci95']:.4f}" if stats["ci95"] is not None else "")


def _pct(value: Optional[float]) -> str:
    return "n/a" if value is None else f"{100 * value:+.1f}%"


def format_baseline(baseline: dict) -> str:
    seeds = baseline.get("seeds") or []
    groups = "groups" in baseline["kind"]
    title = ("multi-task vs each task trained alone" + (" vs suggested groups" if groups else "")
             + f" (test split, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"
             + (", mean ± 95% CI" if len(seeds) > 1 else "") + "):")
    header = f"  {'task':<16} {'metric':<14} {'multi-task':>19} {'independent':>19} {'change':>8}  {'verdict':<24}"
    if groups:
        header += f" {'groups':>19} {'vs multi':>9} {'vs alone':>9}"
    lines = ["", title, header]
    for task, rows in baseline["tasks"].items():
        for metric, row in rows.items():
            arrow = "(higher is better)" if row["higher_is_better"] else "(lower is better)"
            line = (f"  {task:<16} {metric:<14} {_cell(row['multi_task']):>19} {_cell(row['independent']):>19} "
                    f"{_pct(row['change']):>8}  {row['verdict']:<24}")
            if groups:
                line += (f" {_cell(row['groups']):>19} {_pct(row['groups_vs_multi_task']['change']):>9} "
                         f"{_pct(row['groups_vs_independent']['change']):>9}")
            lines.append(line + f"  {arrow}")
    for key, label in (("delta_m", "Delta_m multi-task vs alone"), ("groups_delta_m", "Delta_m groups vs alone")):
        if key in baseline:
            d = baseline[key]
            ci = "" if d["ci95"] is None else f" ± {d['ci95']:.2f}%"
            lines.append(f"{label}: {d['mean']:+.2f}%{ci}  (primary metrics; > 0: better than alone)")
    if groups:
        lines.append("groups: the verdict columns compare groups with multi-task / alone in the same way "
                     "(report.json: groups_vs_multi_task, groups_vs_independent)")
    return "\n".join(lines)
