"""The generic training loop: drives any `Program` (pooled, hard, meta) to a run directory.

    report = fit(program, run_dir, LoopSettings(steps=1000, ...), resume=False)

What the loop owns, for every sharing pattern alike:
- checkpoints (tf.train.CheckpointManager over `program.checkpoint_items()` plus the loop's
  own step counter and early-stopping state), so `resume=True` continues exactly;
- Ctrl-C (SIGINT): finishes the current step (or call of up to `steps_per_call` steps), saves a checkpoint, raises `Interrupted`;
- non-finite values: stop with a message naming the key (task) and step; no checkpoint is
  written after the bad step, so the last good one is kept;
- periodic validation, early stopping, a progress line, metrics.jsonl and TensorBoard;
- the final test evaluation, SavedModel export and report.json.
Only the chief writes run artefacts; other workers save checkpoints to a throwaway folder.
"""
from __future__ import annotations

import math
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from polytask.errors import Interrupted, RunError
from polytask.runtime.checkpoints import (newest_intact, point_state_file_at, prefix_of, remove_manifest,
                                          steps_on_disk, verify, write_manifest)
from polytask.runtime.progress import Progress, notice
from polytask.runtime.rundir import CHECKPOINT_STATE_FILE, RunDir, fsync_directory, jsonable, writing
from polytask.runtime.summaries import ScalarWriter, write_hparams, write_hparams_config


@dataclass
class EarlyStoppingSettings:
    metric: str = "loss"
    patience: int = 5
    mode: str = "min"
    min_delta: float = 0.0


@dataclass
class LoopSettings:
    """How long to train and how often to log, evaluate and checkpoint (in steps)."""

    steps: int
    eval_every: int = 200
    checkpoint_every: int = 500
    log_every: int = 50
    early_stopping: Optional[EarlyStoppingSettings] = None
    max_to_keep: int = 3
    quiet: Optional[bool] = None  # None/False: a progress bar on a terminal, plain lines in a log
    progress_interval: float = 30.0  # seconds between two plain progress lines in a log (CI)
    warmup_steps: int = 5  # steps left out of the steady-state speed
    final_split: str = "test"
    export: bool = True
    extra_report: dict = field(default_factory=dict)
    #: This run's HParams session (`summaries.training_hparams`); empty: none is written.
    hparams: dict = field(default_factory=dict)
    hparams_trial: str = ""
    #: Also write the HParams experiment config (the top-level run of a run directory does).
    hparams_config: bool = False
    on_first_step: Optional[Callable[[], None]] = None  # called once the first step (of this invocation) ran


def _is_chief(strategy) -> bool:
    from polytask.runtime.strategy import is_chief

    return is_chief(strategy)


def _write_dir(strategy, directory: Path) -> Path:
    from polytask.runtime.strategy import worker_write_dir

    return Path(worker_write_dir(strategy, str(directory)))


class _StopSignals:
    """Turns Ctrl-C and SIGTERM (what schedulers send before they kill) into a flag the loop checks
    between steps (never mid-step): the run stops with a checkpoint it can --resume from."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.raised = False
        self._previous = {}

    def __enter__(self):
        try:
            self._previous = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        except ValueError:  # not the main thread: leave signals alone
            self._previous = {}
        return self

    def _handle(self, signum, frame):
        if self.raised:  # a second signal: give up on the clean exit
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc):
        for s, previous in self._previous.items():
            signal.signal(s, previous)
        return False


def save_checked(manager, number: int, chief: bool) -> None:
    """Save checkpoint `number`, then its sha256 manifest (last, atomically); drop the manifests of
    checkpoints the manager rotated out."""
    directory = Path(manager.directory)
    before = set(manager.checkpoints)
    prefix = prefix_of(directory, number)
    blocking = sorted(p for p in directory.glob(f"{prefix.name}.*") if p.is_dir())
    if blocking:  # TensorFlow would fail with a message about permissions, and leave a _temp folder
        raise RunError(f"{blocking[0]} is a folder where checkpoint {prefix.name}'s file goes",
                       hint=f"move {blocking[0]} away (polytask does not delete what it did not write), then "
                       "`train --resume` again")
    with writing(prefix):
        path = manager.save(checkpoint_number=number)
        if chief:
            write_manifest(path)
            for gone in before - set(manager.checkpoints):
                remove_manifest(gone)


def export_whole(program, run: RunDir, strategy, chief: bool) -> None:
    """Export into saved_model.partial, then rename it to saved_model: a kill -9 mid-export leaves
    the previous export (or none), never a half-written one that loads with missing variables."""
    import shutil

    target = _write_dir(strategy, run.saved_model)
    if not chief:
        program.export(str(target))
        return
    partial, old = run.saved_model_partial, run.root / (run.saved_model.name + ".old")
    with writing(partial):
        for leftover in (partial, old):  # left by a run killed during its export (polytask's own)
            if leftover.is_dir():
                shutil.rmtree(leftover)
        program.export(str(partial))
        fsync_directory(partial)
        if target.is_dir():
            os.replace(target, old)
        elif target.exists():
            raise RunError(f"{target} is a file; the export goes there",
                           hint=f"move {target} away and run `train --resume` again to export")
        os.replace(partial, target)
        fsync_directory(run.root)
        if old.is_dir():
            shutil.rmtree(old)


def _improved(value: float, best: float, settings: EarlyStoppingSettings) -> bool:
    if math.isnan(best):
        return True
    if settings.mode == "min":
        return value < best - settings.min_delta
    return value > best + settings.min_delta


def fit(program, run_dir, settings: LoopSettings, *, resume: bool = False) -> dict:
    """Train `program` for `settings.steps` steps (or until early stopping) and return report.json's content."""
    import tensorflow as tf

    strategy = program.strategy
    chief = _is_chief(strategy)
    run = RunDir(Path(run_dir), writer=chief)
    run.create()

    with strategy.scope():
        step = tf.Variable(0, dtype=tf.int64, trainable=False, name="loop_step")
        best = tf.Variable(float("nan"), dtype=tf.float64, trainable=False, name="loop_best")
        bad_evals = tf.Variable(0, dtype=tf.int64, trainable=False, name="loop_bad_evals")
        best_step = tf.Variable(-1, dtype=tf.int64, trainable=False, name="loop_best_step")
    items = dict(program.checkpoint_items())
    checkpoint = tf.train.Checkpoint(
        loop_step=step, loop_best=best, loop_bad_evals=bad_evals, loop_best_step=best_step, **items
    )
    # Read the chief's checkpoints on every worker: the others only write to throwaway folders.
    if resume:
        choice = newest_intact(run.checkpoints, collect_older=chief)
        for message in choice.notices(run.checkpoints):
            notice(message)
        if choice.prefix is None:
            if choice.skipped:
                raise RunError(
                    f"--resume: no intact checkpoint in {run.checkpoints}: "
                    + "; ".join(f"{name}: {reason}" for name, reason in choice.skipped),
                    hint=f"the run cannot continue; start it again with another --out (or move {run.root} away)",
                )
            raise RunError(
                f"--resume: no checkpoint in {run.checkpoints}",
                hint="start the run without --resume, or point --out at the run to continue"
                + ("" if chief else "; every worker of a multi-worker run must see the chief's --out "
                   "directory (a shared file system)"),
            )
        if chief:
            with writing(run.checkpoints / CHECKPOINT_STATE_FILE):
                point_state_file_at(run.checkpoints, choice)
    elif steps_on_disk(run.checkpoints):
        raise RunError(
            f"{run.root} already holds a run (checkpoints in {run.checkpoints})",
            hint="continue it with --resume, or choose a new --out directory",
        )
    manager = tf.train.CheckpointManager(
        checkpoint, str(_write_dir(strategy, run.checkpoints)), max_to_keep=settings.max_to_keep, step_counter=step
    )
    if resume:
        try:
            checkpoint.restore(str(choice.prefix)).assert_existing_objects_matched()
        except (tf.errors.OpError, AssertionError, ValueError) as exc:
            # e.g. the input pipeline's iterator state of an older polytask (the pipeline changed on 2026-12-03)
            raise RunError(f"--resume: checkpoint {choice.prefix} does not fit this program "
                           f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:200]})",
                           hint="it was written by another polytask version; train into a new --out directory") from None
        with writing(run.metrics_file):
            run.truncate_metrics(after_step=int(step.numpy()))

    # With early stopping, the best validation point is kept too and restored at the end.
    best_manager = (tf.train.CheckpointManager(checkpoint, str(_write_dir(strategy, run.best_checkpoints)),
                                               max_to_keep=1, step_counter=step)
                    if settings.early_stopping is not None else None)
    start_step = int(step.numpy())
    total_steps = int(settings.steps)
    summary_train = ScalarWriter(str(run.tensorboard_dir("train"))) if chief else None
    summary_eval = ScalarWriter(str(run.tensorboard_dir("validation"))) if chief else None
    if chief and settings.hparams:
        write_hparams(str(run.tensorboard), settings.hparams, trial_id=settings.hparams_trial or run.root.name)
    progress = Progress(total_steps, start=start_step, quiet=settings.quiet if chief else True,
                        interval=settings.progress_interval)

    graph_build_seconds = None
    steady_seconds = 0.0
    steady_steps = 0
    stopped_early = False
    last_saved = start_step if resume else None  # the checkpoint resumed from is on disk already
    started = time.perf_counter()
    current = start_step
    last_values: dict[str, float] = {}
    last_eval: dict[str, float] = {}

    def save() -> None:
        nonlocal last_saved
        if last_saved != current:
            save_checked(manager, current, chief)
            last_saved = current

    def evaluate_and_track() -> bool:
        """Validation metrics; returns True when early stopping says stop."""
        nonlocal last_eval
        metrics = dict(program.evaluate("validation"))
        if not metrics:
            return False
        last_eval = metrics
        run.log_metrics({"step": current, "split": "validation", **metrics})
        if summary_eval is not None:
            summary_eval.write(current, metrics)
        progress.note(f"step {current}: " + ", ".join(f"{k} {v:.4g}" for k, v in sorted(metrics.items())[:6]))
        es = settings.early_stopping
        if es is None:
            return False
        if es.metric not in metrics:
            raise RunError(
                f"early_stopping.metric '{es.metric}' is not among the validation metrics",
                hint=f"use one of: {', '.join(sorted(metrics))}",
            )
        value = float(metrics[es.metric])
        if _improved(value, float(best.numpy()), es):
            best.assign(value)
            best_step.assign(current)
            bad_evals.assign(0)
            save_checked(best_manager, current, chief)
        else:
            bad_evals.assign_add(1)
        return int(bad_evals.numpy()) >= es.patience

    # Programs that can run several steps per call (`train_steps`) get chunks that end on
    # every log / eval / checkpoint boundary, so the cadence is the same as step by step.
    per_call = int(getattr(program, "steps_per_call", 1) or 1)
    cadence = [n for n in (settings.log_every, settings.eval_every, settings.checkpoint_every) if n and n > 0]

    with _StopSignals() as stop:
        while current < total_steps:
            t0 = time.perf_counter()
            if per_call > 1:
                chunk = min([per_call, total_steps - current] + [n - current % n for n in cadence])
                outputs, ran = program.train_steps(chunk)
            else:
                outputs, ran = program.train_step(), 1
            values = {key: float(value) for key, value in outputs.items()}
            elapsed = time.perf_counter() - t0
            step.assign_add(ran)
            current += ran
            if current - ran == start_step and settings.on_first_step is not None:
                settings.on_first_step()
            if graph_build_seconds is None:
                graph_build_seconds = elapsed
            elif current - start_step > settings.warmup_steps:
                steady_seconds += elapsed
                steady_steps += ran

            bad = [key for key, value in values.items() if not math.isfinite(value)]
            if bad:
                progress.close()
                run.log_metrics({"step": current, "split": "train", **{k: repr(v) for k, v in values.items()}})
                # Name the task when a task's loss is the culprit, else the key (total loss, grad_norm).
                key = sorted(bad, key=lambda k: (not k.startswith("loss/"), k != "loss", k))[0]
                what = f"the loss of task '{key.split('/', 1)[1]}'" if key.startswith("loss/") else f"'{key}'"
                tasks = [k.split("/", 1)[1] for k in bad if k.startswith("loss/")]
                if len(tasks) > 1:
                    what += f" (also tasks {', '.join(repr(t) for t in tasks if t != key.split('/', 1)[1])})"
                kept = manager.latest_checkpoint
                kept_step = Path(kept).name.split('-')[-1] if kept else None
                check = (f"check the targets of task '{key.split('/', 1)[1]}'" if key.startswith("loss/")
                         else "check the data")
                fix = f"lower the learning rate, set training.gradient_clip_norm, or {check} for extreme values"
                raise RunError(
                    f"{what} became {values[key]} at step {current}; training stopped"
                    + (f" (last good checkpoint: step {kept_step}, kept)" if kept else " (no checkpoint was written yet)"),
                    hint=(f"{fix}, then train again; --resume would replay the same steps. To use the model "
                          f"of step {kept_step}, export it without training further: polytask train SPEC --out "
                          f"{run.root} --resume --steps {kept_step}, then polytask evaluate/predict {run.root}")
                    if kept else f"{fix}, then train again (nothing was saved, so there is nothing to resume)",
                )
            last_values = values
            progress.update(current, values)

            if current % settings.log_every == 0 or current == total_steps:
                run.log_metrics({"step": current, "split": "train", **values})
                if summary_train is not None:
                    summary_train.write(current, values)
            if current % settings.eval_every == 0 and current < total_steps:
                if evaluate_and_track():
                    stopped_early = True
                    progress.note(f"early stopping at step {current}: no improvement in "
                                  f"'{settings.early_stopping.metric}' for {settings.early_stopping.patience} evaluations")
                    break
            if current % settings.checkpoint_every == 0:
                save()
            if stop.raised:
                save()
                progress.close()
                raise Interrupted(
                    f"interrupted at step {current}; checkpoint saved in {run.checkpoints}",
                    hint=f"continue with: polytask train SPEC --out {run.root} --resume",
                )

    progress.close()
    save()
    wall = time.perf_counter() - started
    restored_best = None
    if best_manager is not None and best_manager.latest_checkpoint and int(best_step.numpy()) != current:
        # Evaluate and export the best validation point, not the last one (the "last"
        # checkpoint above stays the one --resume continues from).
        damage = verify(best_manager.latest_checkpoint)
        if damage is None:
            restored_best = int(best_step.numpy())
            checkpoint.restore(best_manager.latest_checkpoint).assert_existing_objects_matched()
        else:
            notice(f"the best validation checkpoint {best_manager.latest_checkpoint} is damaged ({damage}); "
                   "evaluating and exporting the last step instead")
    if summary_train is not None:
        summary_train.flush()

    final_metrics = dict(program.evaluate(settings.final_split))
    validation_metrics = dict(program.evaluate("validation")) if settings.final_split != "validation" else {}
    if final_metrics:
        run.log_metrics({"step": current, "split": settings.final_split, **final_metrics})
        if summary_eval is not None:
            summary_eval.write(current, final_metrics, prefix=f"{settings.final_split}/")
            summary_eval.flush()
    if chief and settings.hparams and settings.hparams_config:
        validation_tags = sorted(set(last_eval) | set(validation_metrics)) + [
            f"{settings.final_split}/{key}" for key in sorted(final_metrics)]
        write_hparams_config(str(run.tensorboard), list(settings.hparams),
                             {"train": sorted(last_values), "validation": validation_tags})
    if settings.export:
        export_whole(program, run, strategy, chief)

    counts = None
    if hasattr(program, "parameter_counts"):
        counts = dict(program.parameter_counts())
    elif hasattr(program.plan, "to_dict"):
        counts = program.plan.to_dict().get("totals")
    report: dict[str, Any] = {
        "steps": current,
        "steps_requested": total_steps,
        "resumed_from_step": start_step if resume else None,
        "stopped_early": stopped_early,
        "early_stopping": (
            {"metric": settings.early_stopping.metric, "best": float(best.numpy()), "best_step": int(best_step.numpy())}
            if settings.early_stopping is not None and int(best_step.numpy()) >= 0 else None
        ),
        "evaluated_weights": f"best validation point (step {restored_best})" if restored_best is not None else "last step",
        "wall_time_seconds": round(wall, 3),
        "graph_build_seconds": None if graph_build_seconds is None else round(graph_build_seconds, 4),
        "steady_state_steps_per_second": round(steady_steps / steady_seconds, 2) if steady_seconds > 0 else None,
        "last_train": last_values,
        "metrics": {settings.final_split: final_metrics, "validation": validation_metrics},
        "parameters": counts,
    }
    report.update(settings.extra_report)
    if hasattr(program, "report"):
        report.update(dict(program.report()))
    run.write_report(jsonable(report))
    return report
