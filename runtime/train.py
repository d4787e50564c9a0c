"""`polytask train` without the CLI: spec -> strategy -> program -> `fit` -> run directory.

    report = train_spec(load_spec("examples/digits_hard.yaml"), out="runs/digits")

Also runs one seed's baselines (`baseline="independent"`: every task alone with the same
architecture, steps and batch size; `"groups"`: also the suggested task groups), compared by
`polytask.runtime.baseline` (which also runs several seeds).
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

BASELINES = ("independent", "groups")


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
               precision: Optional[str] = None, quiet: Optional[bool] = None, echo=None,
               groups: Optional[list] = None, write_comparison: bool = True) -> dict:
    """Train the spec into run directory `out`; returns the report (also written to out/report.json)."""
    from polytask.compiler.compile import compile_program
    from polytask.runtime.strategy import is_chief, worker_failures_as_run_errors

    if baseline is not None and baseline not in BASELINES:
        raise RunError(f"unknown baseline '{baseline}'", hint=f"use one of: {', '.join(BASELINES)}")
    if baseline is not None and loaded.spec.is_meta:
        raise RunError(f"--baseline {baseline} compares multi-task runs with single-task runs",
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

        if baseline is not None:
            from polytask.runtime.baseline import arms, compare

            kinds = ("independent",) if baseline == "independent" else ("independent", "groups")
            report["baseline_runs"] = arms(loaded, run, report, kinds=kinds, groups=groups, strategy=tf_strategy,
                                           allow_code=allow_code, echo=echo)
            if write_comparison:
                report["baseline"] = compare([report["baseline_runs"]])
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


def train_subset(loaded, tasks: list, run_dir: Path, *, strategy, allow_code: bool, tables: dict, plan) -> dict:
    """Train only `tasks` (same architecture, steps, batch size and inputs as the full spec) into
    run_dir; its test metrics. One task trains with equal weighting (weighting schemes are for several)."""
    from polytask.compiler.compile import compile_program

    spec = loaded.spec
    inputs = {name: t.input_columns for name, t in plan.tasks.items()}
    kinds = {w.kind for w in spec.training.weighting}
    subset = with_overrides(loaded, tasks=list(tasks), equal_weighting=len(tasks) == 1 or "static" in kinds,
                            inputs=inputs)
    datasets = {spec.tasks[name].dataset for name in tasks}
    program = compile_program(subset, strategy=strategy, seed=spec.seed, allow_code=allow_code,
                              steps=spec.training.steps, tables={d: tables[d] for d in datasets})
    settings = loop_settings(subset.spec, steps=spec.training.steps, quiet=True, export=False)
    settings.hparams = training_hparams(subset.spec, role="independent" if len(tasks) == 1 else "group",
                                        tasks=list(tasks))
    settings.hparams_trial = f"{spec.name} seed {spec.seed} {'+'.join(tasks)}"
    stopping = settings.early_stopping
    if stopping is not None and "/" in stopping.metric and stopping.metric.split("/", 1)[0] not in tasks:
        stopping.metric, stopping.mode = "loss", "min"
    return fit(program, run_dir, settings)["metrics"].get("test") or {}
