"""`polytask train` without the CLI: spec -> strategy -> program -> `fit` -> run directory.

    report = train_spec(load_spec("examples/digits_hard.yaml"), out="runs/digits")

Also runs one seed's baselines (`baseline="independent"`: every task alone with the same
architecture, steps and batch size; `"groups"`: also the suggested task groups), compared by
`polytask.runtime.baseline` (which also runs several seeds).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from polytask.errors import RunError
from polytask.runtime.checkpoints import newest_intact, steps_on_disk
from polytask.runtime.loop import EarlyStoppingSettings, LoopSettings, fit
from polytask.runtime.progress import notice
from polytask.runtime.rundir import (CHECKPOINTS_DIR, SPEC_HEADER, RunDir, RunLock, atomic_write_text, existing_run,
                                     is_ours, jsonable, writing)
from polytask.runtime.summaries import training_hparams
from polytask.spec.checker import inert_defaults

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
    return inert_defaults(content, loaded.spec.model_dump(mode="json", by_alias=True, exclude_unset=True))


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
    # These checks come before anything is written: a typo in --out must not create a
    # directory, and a new run must not overwrite the spec.yaml of the run already there
    # (nor any file of a folder polytask did not make).
    if resume:
        if run.root.is_dir() and not any(run.root.iterdir()):  # killed right after making the folder
            raise RunError(f"--resume: no checkpoint in {run.checkpoints} (the run stopped before its first one)",
                           hint="start the run without --resume")
        existing_run(run.root, option="--out")
    else:
        if run.root.exists() and not run.root.is_dir():
            raise RunError(f"--out: {run.root} is a file, not a folder", hint="choose a new --out directory")
        if steps_on_disk(run.checkpoints):
            raise RunError(f"{run.root} already holds a run ({CHECKPOINTS_DIR}/)",
                           hint="continue it with --resume, or choose a new --out directory")
        if not is_ours(run.root):
            raise RunError(f"--out: {run.root} is not empty and is not a polytask run directory",
                           hint="polytask trains only into a new or empty folder (or one of its own runs) and never "
                           f"overwrites files it did not write; choose another --out, e.g. {run.root / 'run'}")
    content = resolved_spec(loaded)
    if resume and run.spec_file.exists():  # first: --steps advice is no use for another spec's run
        _same_spec(run, content)
    if resume:
        done = checkpoint_step(run.checkpoints)
        if done is not None and spec.training.steps < done:
            raise RunError(f"--resume: the run in {run.root} is already at step {done}, past the "
                           f"{spec.training.steps} steps asked for",
                           hint=f"pass --steps above {done} to train further; " + (
                               f"`polytask evaluate {run.root}` reads the run as it is" if run.saved_model.is_dir()
                               else f"--steps {done} exports the run as it is (it has no export yet)"))

    tf_strategy = _strategy(spec, strategy, precision)
    chief = is_chief(tf_strategy)
    lock = RunLock(run.root) if chief else None
    ancestors = _missing_ancestors(run.root)
    before = set(_entries(run.root))
    reached = []  # set once a training step ran: from then on the run folder is worth keeping
    try:
        if chief:
            run.create()
            lock.acquire(notice=notice)
            with writing(run.inputs_file):
                _check_inputs(run, content, resume)
        with out_of_memory(spec, "building the model"):
            program = compile_program(loaded, strategy=tf_strategy, seed=spec.seed, allow_code=allow_code,
                                      steps=spec.training.steps)
        for message in getattr(program, "notices", ()):
            notice(message)
        if chief and not _is_the_runs_own_spec(loaded, run):  # resumed from RUN/spec.yaml: it stays as written
            import yaml

            with writing(run.spec_file):
                atomic_write_text(run.spec_file, f"{SPEC_HEADER}{loaded.path} (defaults filled in, paths absolute)\n"
                                  + yaml.safe_dump(content, sort_keys=False))
            with writing(run.program_file):
                run.write_json(run.program_file, {"spec": str(loaded.path), "sharing": spec.sharing,
                                                  "plan": program.plan.to_dict() if hasattr(program.plan, "to_dict")
                                                  else None})
        settings = loop_settings(spec, steps=spec.training.steps, quiet=quiet)
        settings.extra_report = {"spec": str(loaded.path), "name": spec.name, "seed": spec.seed,
                                 "strategy": _describe(tf_strategy)}
        settings.hparams = training_hparams(spec, role="meta" if spec.is_meta else "multi_task")
        settings.hparams_trial = f"{spec.name} seed {spec.seed}"
        settings.hparams_config = True
        settings.on_first_step = lambda: reached.append(True)
        with worker_failures_as_run_errors(tf_strategy), writing(run.root, tf_errors=False), \
                out_of_memory(spec, "training"):  # a dead peer worker: say how to --resume
            report = fit(program, run.root, settings, resume=resume)
            reached.append(True)

            if baseline is not None:
                from polytask.runtime.baseline import arms, compare

                kinds = ("independent",) if baseline == "independent" else ("independent", "groups")
                report["baseline_runs"] = arms(loaded, run, report, kinds=kinds, groups=groups, strategy=tf_strategy,
                                               allow_code=allow_code, echo=echo)
                if write_comparison:
                    report["baseline"] = compare([report["baseline_runs"]])
                if chief:
                    run.write_report(jsonable(report))
    except BaseException:
        if lock is not None:
            lock.release()
        if chief and not reached:
            _remove_created(run.root, before, ancestors)
        raise
    if lock is not None:
        lock.release()
    return report


def _is_the_runs_own_spec(loaded, run: RunDir) -> bool:
    try:
        return Path(loaded.path).resolve() == run.spec_file.resolve()
    except (OSError, TypeError):
        return False


def _same_spec(run: RunDir, content: dict) -> None:
    """Refuse a --resume whose spec differs from the run's spec.yaml (only training.steps may change)."""
    import yaml

    try:
        previous = yaml.safe_load(run.spec_file.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError) as exc:
        raise RunError(f"cannot read {run.spec_file}: {str(exc).splitlines()[0]}",
                       hint="the run directory looks damaged; polytask rewrites it if you move it away "
                       "and --resume again") from None
    if not isinstance(previous, dict):
        previous = {}
    training = previous.get("training")
    if isinstance(training, dict):
        training.pop("steps", None)
    # Settings without effect do not make two specs differ (runs before 2026-12 wrote e.g. meta_batch
    # into the spec.yaml of every multi-task run).
    previous, current = inert_defaults(previous, {}), inert_defaults(json.loads(json.dumps(content)), {})
    current.get("training", {}).pop("steps", None)
    if _spec_digest(previous) != _spec_digest(current):
        raise RunError(
            f"the spec differs from the one {run.root} was started with ({run.spec_file})",
            hint="resume with the same spec and --seed (only --steps may change), or start a new run with another --out",
        )


@contextlib.contextmanager
def out_of_memory(spec, doing: str):
    """Out of memory (TensorFlow's ResourceExhaustedError, Python's MemoryError) as a RunError."""
    import tensorflow as tf

    try:
        yield
    except (tf.errors.ResourceExhaustedError, MemoryError) as exc:
        first = (getattr(exc, "message", None) or str(exc) or type(exc).__name__).strip().splitlines()[0][:200]
        size = (f"training.meta_batch (now {spec.training.meta_batch})" if spec.is_meta
                else f"training.batch_size (now {spec.training.batch_size})")
        raise RunError(f"out of memory while {doing}: {first}",
                       hint=f"lower {size} or make the model smaller") from None


def _entries(root: Path) -> list[str]:
    try:
        return [p.name for p in root.iterdir()]
    except OSError:
        return []


def _missing_ancestors(root: Path) -> list[Path]:
    """`root` and those of its parents that do not exist yet (what mkdir -p would create), deepest first."""
    missing = []
    path = root.absolute()
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


def _remove_created(root: Path, before: set, ancestors: list[Path]) -> None:
    """Undo a run that never reached its first step: remove what this invocation created, nothing else."""
    import shutil

    for name in set(_entries(root)) - before:
        path = root / name
        try:
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
        except OSError:
            pass
    for folder in ancestors:
        try:
            folder.rmdir()
        except OSError:
            break


def _input_paths(content: dict) -> list[Path]:
    paths = [dataset["path"] for dataset in (content.get("datasets") or {}).values() if "path" in dataset]
    family = content.get("family") or {}
    if "path" in family:
        paths.append(family["path"])
    return [Path(p) for p in paths]


def _files_under(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.is_file())
    return [path] if path.is_file() else []


def _file_fingerprint(path: Path, with_hash: bool = True) -> dict:
    stat = path.stat()
    entry = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if with_hash:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        entry["sha256"] = digest.hexdigest()
    return entry


def input_fingerprints(content: dict) -> dict[str, dict]:
    """Size, mtime and sha256 of every data file the spec reads (files under a data folder too)."""
    return {str(f): _file_fingerprint(f) for p in _input_paths(content) for f in _files_under(p)}


def changed_inputs(recorded: dict, content: dict) -> list[str]:
    """What differs between the data files recorded at the start of a run and those on disk now.

    Size and mtime are compared first; a file whose mtime moved is hashed again, so touching a
    file (or copying it with its content intact) is not a change.
    """
    changes = []
    now = {str(f) for p in _input_paths(content) for f in _files_under(p)}
    for name, before in sorted(recorded.items()):
        path = Path(name)
        if name not in now:
            changes.append(f"{name} was removed")
            continue
        try:
            current = _file_fingerprint(path, with_hash=False)
            if current["size"] != before.get("size"):
                changes.append(f"{name} changed size ({before.get('size')} -> {current['size']} bytes)")
            elif current["mtime_ns"] != before.get("mtime_ns") and \
                    _file_fingerprint(path)["sha256"] != before.get("sha256"):
                changes.append(f"{name} changed content")
        except OSError as exc:
            changes.append(f"{name} cannot be read ({exc.strerror})")
    changes += [f"{name} was added" for name in sorted(now - set(recorded))]
    return changes


def _check_inputs(run: RunDir, content: dict, resume: bool) -> None:
    """New run: record the data files (inputs.json). Resume: refuse when they changed since."""
    recorded = None
    if resume and run.inputs_file.exists():
        try:
            recorded = json.loads(run.inputs_file.read_text(encoding="utf-8"))["files"]
            if not isinstance(recorded, dict) or not all(isinstance(v, dict) for v in recorded.values()):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            notice(f"{run.inputs_file} is damaged; the data files cannot be compared with the run's start "
                   "and are recorded again now")
            recorded = None
    if recorded is not None:
        changes = changed_inputs(recorded, content)
        if changes:
            shown = "; ".join(changes[:3]) + (f" (and {len(changes) - 3} more)" if len(changes) > 3 else "")
            raise RunError(f"--resume: the data changed since {run.root} was started: {shown}",
                           hint="restore the data the run started with, or train a new run (another --out) "
                           "on the new data")
        return
    run.write_json(run.inputs_file, {"files": input_fingerprints(content)})


def checkpoint_step(directory: Path) -> Optional[int]:
    """The training step of the newest intact checkpoint in `directory`, or None."""
    return newest_intact(directory).step


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
