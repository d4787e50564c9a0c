"""Synthetic run directories for `polytask report` tests, in the formats training writes.

`multitask_run` writes what `polytask train --baseline independent --seeds N` leaves behind
(metrics.jsonl, report.json with `baseline.tasks.<task>.<metric> = {multi_task: {mean, ci95,
values}, independent: {...}, change, verdict}` and `baseline.delta_m` in percent, program.json
with the plan's parameter groups) plus affinity.json as `polytask affinity --out DIR` writes it
({"tasks", "affinity", "groups", "steps"}). `meta_run` writes a meta run's report.json with
its `meta_test` adaptation curve. Numbers are random but shaped like real ones.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def task_names(count: int) -> list[str]:
    return [f"task_{i:02d}" for i in range(count)]


def _write(path: Path, content) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def multitask_run(root: Path, tasks: int = 30, *, seeds: int = 3, affinity: bool = True, steps: int = 400,
                  rng_seed: int = 0) -> Path:
    rng = np.random.default_rng(rng_seed)
    names = task_names(tasks)
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.yaml").write_text("polytask: 1\nname: synthetic\n", encoding="utf-8")
    lines = []
    for step in range(50, steps + 1, 50):
        decay = np.exp(-step / 150)
        losses = {f"loss/{n}": float(0.2 + decay * (1 + 0.3 * rng.random())) for n in names}
        lines.append({"step": step, "split": "train", "loss": sum(losses.values()), "grad_norm": 1.0, **losses})
        if step % 100 == 0:
            record = {"step": step, "split": "validation"}
            for n in names:
                record[f"{n}/loss"] = float(0.25 + decay * (1 + 0.3 * rng.random()))
                record[f"{n}/accuracy"] = float(0.9 - 0.5 * decay + 0.02 * rng.random())
            record["loss"] = sum(v for k, v in record.items() if k.endswith("/loss"))
            lines.append(record)
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    test = {}
    for n in names:
        test[f"{n}/loss"] = float(0.3 + 0.1 * rng.random())
        test[f"{n}/accuracy"] = float(0.85 + 0.1 * rng.random())
    test["loss"] = sum(v for k, v in test.items() if k.endswith("/loss"))
    rows = {}
    for n in names:
        mt = 0.85 + 0.1 * rng.random(seeds)
        ind = 0.85 + 0.1 * rng.random(seeds)
        summary = lambda v: {"mean": float(v.mean()), "ci95": float(1.96 * v.std(ddof=1) / np.sqrt(len(v))),
                             "values": [float(x) for x in v]}
        change = float((mt.mean() - ind.mean()) / ind.mean())
        rows[n] = {"accuracy": {"higher_is_better": True, "multi_task": summary(mt), "independent": summary(ind),
                                "change": change, "verdict": "helps" if change > 0.05 else "no detectable difference"}}
    report = {
        "steps": steps, "name": "synthetic", "spec": str(root / "spec.yaml"), "seed": 0, "sharing": "hard",
        "wall_time_seconds": 12.5, "steady_state_steps_per_second": 250.0, "evaluated_weights": "last step",
        "metrics": {"test": test, "validation": {}},
        "parameters": {"shared": 16576, "task_specific": 200 * tasks, "total": 16576 + 200 * tasks},
        "baseline": {"kind": "independent", "split": "test", "seeds": list(range(seeds)), "tasks": rows,
                     "delta_m": {"mean": 1.2, "ci95": 0.8, "values": [0.5, 1.2, 1.9]}},
    }
    _write(root / "report.json", report)
    groups = [{"name": "trunk", "tasks": names, "shared": True, "params": 16576,
               "layers": [{"kind": "dense", "output_shape": [128], "params": 8320},
                          {"kind": "dense", "output_shape": [64], "params": 8256}]}]
    groups += [{"name": f"head[{n}]", "tasks": [n], "shared": False, "params": 200,
                "layers": [{"kind": "dense", "output_shape": [2], "params": 130}]} for n in names]
    plan = {"name": "synthetic", "sharing": "hard",
            "tasks": {n: {"metrics": ["accuracy"], "loss": "cross_entropy"} for n in names},
            "parameter_groups": groups, "totals": {"shared": 16576, "task_specific": 200 * tasks, "total": 16576 + 200 * tasks}}
    _write(root / "program.json", {"spec": str(root / "spec.yaml"), "sharing": "hard", "plan": plan})
    if affinity:
        matrix = rng.normal(0, 0.05, (tasks, tasks))
        half = tasks // 2
        _write(root / "affinity.json", {"tasks": names, "affinity": matrix.tolist(),
                                        "groups": [names[half:], names[:half]], "steps": 100})
    return root


def meta_run(root: Path, *, steps_in_curve: int = 6) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "spec.yaml").write_text("polytask: 1\nname: meta\n", encoding="utf-8")
    lines = [{"step": s, "split": "train", "loss": 4.0 / (1 + s / 100), "mse": 4.0 / (1 + s / 100)} for s in range(50, 501, 50)]
    lines += [{"step": s, "split": "validation", "loss": 4.2 / (1 + s / 100), "mse": 4.2 / (1 + s / 100),
               "mse_ci95": 0.2} for s in range(100, 501, 100)]
    (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    curve = [{"steps": s, "mse": {"mean": 3.0 / (1 + s), "ci95": 0.2}} for s in range(steps_in_curve)]
    _write(root / "report.json", {
        "steps": 500, "name": "meta", "seed": 0, "metrics": {"test": {"mse": 0.5, "mse_ci95": 0.2}},
        "meta_test": {"split": "test", "episodes": 600, "ways": None, "shots": 10, "queries": 10,
                      "algorithm": "maml", "inner_steps": steps_in_curve - 1, "curve": curve}})
    _write(root / "program.json", {"sharing": "meta", "plan": {"sharing": "meta", "layers": [
        {"name": "layer0_dense", "kind": "dense", "output_shape": [40], "parameters": 80}],
        "totals": {"shared": 80, "task_specific": 0, "total": 80}}})
    return root


def seeds_run(root: Path, tasks: int = 4, seeds: int = 3) -> Path:
    """What `polytask train --baseline groups --seeds N` leaves: RUN_DIR/report.json with the
    comparison (multi-task, alone and the suggested groups over seeds) and RUN_DIR/seed-<s>/
    run directories."""
    rng = np.random.default_rng(1)
    names = task_names(tasks)
    runs = []
    for seed in range(seeds):
        member = multitask_run(root / f"seed-{seed}", tasks=tasks, affinity=False, rng_seed=seed)
        report = json.loads((member / "report.json").read_text())
        report.pop("baseline")
        report["seed"] = seed
        _write(member / "report.json", report)
        runs.append(str(member))

    def summary(values):
        return {"mean": float(np.mean(values)), "ci95": float(np.std(values, ddof=1)), "values": [float(v) for v in values]}

    rows = {}
    for n in names:
        mt, ind, grp = (0.85 + 0.1 * rng.random(seeds) for _ in range(3))
        rows[n] = {"accuracy": {
            "higher_is_better": True, "multi_task": summary(mt), "independent": summary(ind), "groups": summary(grp),
            "difference": {"mean": float(np.mean(mt - ind)), "ci95": 0.05},
            "change": float((mt.mean() - ind.mean()) / ind.mean()), "verdict": "no detectable difference",
            "groups_vs_multi_task": {"difference": {"mean": 0.0, "ci95": 0.05}, "change": 0.01, "verdict": "helps"},
            "groups_vs_independent": {"difference": {"mean": 0.0, "ci95": 0.05}, "change": -0.02, "verdict": "hurts"}}}
    _write(root / "report.json", {
        "name": "synthetic", "spec": str(root / "seed-0" / "spec.yaml"), "seeds": list(range(seeds)), "runs": runs,
        "groups": [names[: tasks // 2], names[tasks // 2:]],
        "baseline": {"kind": "independent+groups", "split": "test", "seeds": list(range(seeds)), "tasks": rows,
                     "delta_m": {"mean": -0.7, "ci95": 1.1, "values": [0.1, -0.5, -1.7]},
                     "groups_delta_m": {"mean": 2.5, "ci95": 0.9, "values": [2.0, 2.5, 3.0]}}})
    return root
