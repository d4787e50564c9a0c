"""`polytask train` without the CLI: spec -> strategy -> program -> `fit` -> run directory.

    report = train_spec(load_spec("examples/digits_hard.yaml"), out="runs/digits")

Also runs the independent baseline (`baseline="independent"`): every task alone with the
same architecture, steps and batch size, compared with the multi-task run per task.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from polytask.errors import RunError
from polytask.runtime.loop import EarlyStoppingSettings, LoopSettings, fit
from polytask.runtime.rundir import CHECKPOINTS_DIR, RunDir, existing_run, jsonable
from polytask.runtime.summaries import training_hparams

BASELINES = ("independent",)


def resolved_spec(loaded) -> dict:
    """The spec with every default filled in and every data path made absolute."""
    content = loaded.spec.model_dump(mode="json", by_alias=True, exclude_none=True)
    for name, dataset in content.get("datasets", {}).items():
        if "path" in dataset:
            dataset["path"] = str(loaded.resolve_path(dataset["path"]))
    family = content.get("family") or {}
    if "path" in family:
        family["path"] = str(loaded.resolve_path(family["path"]))
    return content


def _spec_digest(content: dict) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def with_overrides(loaded, *, seed: Optional[int] = None, steps: Optional[int] = None, tasks: Optional[list] = None,
                   equal_weighting: bool = False, inputs: Optional[dict] = None):
    """A copy of `loaded` with a different seed, step budget or subset of tasks."""
    import dataclasses

    from polytask.spec.models import Weighting

    spec = loaded.spec
    update: dict[str, Any] = {}
    if seed is not None:
        update["seed"] = int(seed)
    training_update: dict[str, Any] = {}
    if steps is not None:
        training_update["steps"] = int(steps)
    if equal_weighting:
        training_update["weighting"] = [Weighting(equal={})]
    if training_update:
        update["training"] = spec.training.model_copy(update=training_update)
    if tasks is not None:
        # Each task keeps exactly its multi-task inputs (by default the inputs are every
        # column no task predicts, which would change when the other tasks are dropped).
        update["tasks"] = {name: spec.tasks[name].model_copy(update={"features": list(inputs[name])})
                           if inputs and name in inputs else spec.tasks[name] for name in tasks}
    if not update:
        return loaded
    return dataclasses.replace(loaded, spec=spec.model_copy(update=update))


def loop_settings(spec, *, steps: int, quiet: Optional[bool], export: bool = True) -> LoopSettings:
    training = spec.training
    stopping = training.early_stopping
    return LoopSettings(
        steps=steps,
        eval_every=training.eval_every,
        checkpoint_every=training.checkpoint_every,
        log_every=training.log_every,
        early_stopping=EarlyStoppingSettings(stopping.metric, stopping.patience, stopping.mode, stopping.min_delta)
        if stopping is not None else None,
        quiet=quiet,
        export=export,
    )


def _strategy(spec, strategy: Optional[str], precision: Optional[str]):
    from polytask.runtime.strategy import create_strategy

    return create_strategy(strategy or spec.runtime.strategy, precision or spec.runtime.precision)


def train_spec(loaded, out, *, steps: Optional[int] = None, seed: Optional[int] = None, resume: bool = False,
               baseline: Optional[str] = None, allow_code: bool = False, strategy: Optional[str] = None,
               precision: Optional[str] = None, quiet: Optional[bool] = None, echo=None) -> dict:
    """Train the spec into run directory `out`; returns the report (also written to out/report.json)."""
    from polytask.compiler.compile import compile_program
    from polytask.runtime.strategy import is_chief, worker_failures_as_run_errors

    if baseline is not None and baseline not in BASELINES:
        raise RunError(f"unknown baseline '{baseline}'", hint=f"use one of: {', '.join(BASELINES)}")
    if baseline is not None and loaded.spec.is_meta:
        raise RunError("--baseline independent compares multi-task runs with single-task runs",
                       hint="meta specs report meta-test metrics instead; drop --baseline")
    loaded = with_overrides(loaded, seed=seed, steps=steps)
    spec = loaded.spec
    run = RunDir(Path(out))
    # Both checks come before anything is written: a typo in --out must not create a
    # directory, and a new run must not overwrite the spec.yaml of the run already there.
    if resume:
        existing_run(run.root, option="--out")
        done = checkpoint_step(run.checkpoints)
        if done is not None and spec.training.steps < done:
            raise RunError(f"--resume: the run in {run.root} is already at step {done}, past the "
                           f"{spec.training.steps} steps asked for",
                           hint=f"pass --steps above {done} to train further; "
                           f"`polytask evaluate {run.root}` reads the run as it is")
    elif run.checkpoint_state.exists():
        raise RunError(f"{run.root} already holds a run ({CHECKPOINTS_DIR}/)",
                       hint="continue it with --resume, or choose a new --out directory")
    content = resolved_spec(loaded)
    if resume and run.spec_file.exists():
        import yaml

        previous = yaml.safe_load(run.spec_file.read_text(encoding="utf-8")) or {}
        previous.get("training", {}).pop("steps", None)
        current = json.loads(json.dumps(content))
        current.get("training", {}).pop("steps", None)
        if _spec_digest(previous) != _spec_digest(current):
            raise RunError(
                f"the spec differs from the one {run.root} was started with ({run.spec_file})",
                hint="resume with the same spec and --seed (only --steps may change), or start a new run with another --out",
            )

    tf_strategy = _strategy(spec, strategy, precision)
    program = compile_program(loaded, strategy=tf_strategy, seed=spec.seed, allow_code=allow_code,
                              steps=spec.training.steps)
    chief = is_chief(tf_strategy)
    if chief:
        run.create()
        import yaml

        run.spec_file.write_text(
            f"# resolved spec of {loaded.path} (defaults filled in, paths absolute)\n"
            + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
        run.write_json(run.program_file, {"spec": str(loaded.path), "sharing": spec.sharing,
                                          "plan": program.plan.to_dict() if hasattr(program.plan, "to_dict") else None})
    settings = loop_settings(spec, steps=spec.training.steps, quiet=quiet)
    settings.extra_report = {"spec": str(loaded.path), "name": spec.name, "seed": spec.seed,
                             "strategy": _describe(tf_strategy)}
    settings.hparams = training_hparams(spec, role="meta" if spec.is_meta else "multi_task")
    settings.hparams_trial = f"{spec.name} seed {spec.seed}"
    settings.hparams_config = True
    with worker_failures_as_run_errors(tf_strategy):  # a dead peer worker: say how to --resume
        report = fit(program, run.root, settings, resume=resume)

        if baseline == "independent":
            report["baseline"] = independent_baseline(loaded, run, report, strategy=tf_strategy,
                                                      allow_code=allow_code, quiet=quiet, echo=echo)
            if chief:
                run.write_report(jsonable(report))
    return report


def checkpoint_step(directory: Path) -> Optional[int]:
    """The training step of the latest checkpoint in `directory` (the loop's `loop_step`), or None."""
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(directory)) if directory.is_dir() else None
    if latest is None:
        return None
    try:
        return int(tf.train.load_variable(latest, "loop_step/.ATTRIBUTES/VARIABLE_VALUE"))
    except (tf.errors.OpError, ValueError):  # damaged or foreign: fit() reports it on restore
        return None


def _describe(strategy) -> dict:
    from polytask.runtime.strategy import describe

    return describe(strategy)


def primary_metric(task_plan) -> str:
    return task_plan.metrics[0] if task_plan.metrics else "loss"


def independent_baseline(loaded, run: RunDir, report: dict, *, strategy, allow_code: bool, quiet, echo=None) -> dict:
    """Train each task alone (same architecture, steps, batch size) and compare on the test split."""
    from polytask.compiler.compile import compile_program
    from polytask.spec.registry import METRICS
    from polytask.compiler.multitask.data import load_tables

    spec = loaded.spec
    from polytask.compiler.plan import build_plan

    tables = load_tables(loaded, allow_code=allow_code, seed=spec.seed)
    plan = build_plan(loaded, allow_code=allow_code, column_info={n: t.info for n, t in tables.items()})
    inputs = {name: t.input_columns for name, t in plan.tasks.items()}
    multi = report["metrics"].get("test") or {}
    rows = {}
    for name in spec.tasks:
        if echo:
            echo(f"baseline: training task '{name}' alone ({spec.training.steps} steps)")
        single = with_overrides(loaded, tasks=[name], equal_weighting=True, inputs=inputs)
        dataset = spec.tasks[name].dataset
        program = compile_program(single, strategy=strategy, seed=spec.seed, allow_code=allow_code,
                                  steps=spec.training.steps, tables={dataset: tables[dataset]})
        settings = loop_settings(single.spec, steps=spec.training.steps, quiet=True, export=False)
        settings.hparams = training_hparams(single.spec, role="independent", tasks=[name])
        settings.hparams_trial = f"{spec.name} seed {spec.seed} {name} alone"
        alone = fit(program, run.baseline(name), settings)
        metric = primary_metric(program.plan.tasks[name])
        key = f"{name}/{metric}"
        mt, ind = multi.get(key), (alone["metrics"].get("test") or {}).get(key)
        higher = METRICS.get(metric).higher_is_better if metric != "loss" else False
        change = None if mt is None or ind is None or ind == 0 else (mt - ind) / abs(ind)
        better = None if mt is None or ind is None or mt == ind else (mt > ind if higher else mt < ind)
        rows[name] = {"metric": metric, "higher_is_better": higher, "multi_task": mt, "independent": ind,
                      "relative_change": change, "multi_task_better": better,
                      "independent_steps": alone["steps"], "independent_run": str(run.baseline(name))}
    return {"kind": "independent", "split": "test", "tasks": rows}


def format_baseline(baseline: dict) -> str:
    rows = baseline["tasks"]
    lines = ["", "multi-task vs each task trained alone (test split):",
             f"  {'task':<16} {'metric':<14} {'multi-task':>11} {'independent':>12} {'change':>9}"]
    for name, row in rows.items():
        mt = "n/a" if row["multi_task"] is None else f"{row['multi_task']:.4f}"
        ind = "n/a" if row["independent"] is None else f"{row['independent']:.4f}"
        change = "n/a" if row["relative_change"] is None else f"{100 * row['relative_change']:+.1f}%"
        verdict = {None: "  no change", True: "  sharing helps", False: "  sharing hurts"}[row["multi_task_better"]]
        arrow = "(higher is better)" if row["higher_is_better"] else "(lower is better)"
        lines.append(f"  {name:<16} {row['metric']:<14} {mt:>11} {ind:>12} {change:>9}{verdict}  {arrow}")
    return "\n".join(lines)
