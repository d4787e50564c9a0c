"""`polytask train SPEC`: compile a spec and train it into a run directory."""
from __future__ import annotations

import json
import signal
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option, input_file, quiet_tensorflow
from polytask.cli._requires import needs_tensorflow
from polytask.limits import MAX_INT as MAX_SEED


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def default_run_dir(spec_name: str) -> Path:
    return Path("runs") / spec_name


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default: runs/<spec name>).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override training.steps.")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None, help="Override the spec's seed.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--baseline", type=click.Choice(["independent", "groups"]), default=None,
              help="Also train each task alone (independent), and the affinity-suggested groups (groups); "
              "compare per task and metric (report.json 'baseline').")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --baseline: train every arm for seeds s..s+N-1 (into RUN_DIR/seed-<s>/) and report "
              "mean +/- 95% CI and verdicts.")
@click.option("--parallel", type=click.IntRange(min=1), default=1, show_default=True,
              help="With --seeds: run this many seeds at once, in separate processes.")
@click.option("--groups-from", "groups_from", type=click.Path(), default=None,
              help="--baseline groups: the --out directory (or affinity.json) of a previous `polytask affinity`; "
              "without it the groups are computed first (RUN_DIR/affinity/).")
@click.option("--allow-code", is_flag=True, help="Allow `source: python` datasets to import user code.")
@click.option("--strategy", type=click.Choice(["auto", "one_device", "mirrored", "multi_worker", "tpu"]), default=None,
              help="tf.distribute strategy (default: the spec's runtime.strategy). training.batch_size "
              "is the GLOBAL batch, split over all replicas; multi_worker reads TF_CONFIG "
              "(docs/distributed.md).")
@click.option("--precision", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]), default=None,
              help="Compute precision (default: the spec's runtime.precision).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@format_option("text", "json", help="Final summary as text, or the report as one JSON object (also on error).")
@needs_tensorflow("train")
def train(spec, out, steps, seed, resume, baseline, seeds, parallel, groups_from, allow_code, strategy, precision, quiet,
          output_format):
    """Train SPEC: checkpoints, TensorBoard, metrics.jsonl, report.json and a SavedModel in --out."""
    from polytask.spec.loader import load_spec

    if (seeds > 1 or parallel > 1 or groups_from) and baseline is None:
        raise click.UsageError("--seeds, --parallel and --groups-from go with --baseline independent|groups")
    if groups_from and baseline != "groups":
        raise click.UsageError("--groups-from names the groups of --baseline groups; "
                               f"--baseline {baseline} would ignore it")
    if seeds > 1 and resume:
        raise click.UsageError("--resume continues one run; it cannot be combined with --seeds")

    input_file(spec, "spec file")
    loaded = load_spec(spec, check_data=True, allow_code=allow_code)
    effective_steps(loaded, steps)
    first_seed = loaded.spec.seed if seed is None else seed
    if first_seed + seeds - 1 > MAX_SEED:
        raise click.UsageError(f"--seeds {seeds} from seed {first_seed} goes past the largest seed, {MAX_SEED}; "
                               "lower --seed or --seeds")
    # A scheduler's SIGTERM unwinds like Ctrl-C: a run that never reached its first step removes
    # what it created, and the training loop stops at a checkpoint (runtime/loop.py).
    signal.signal(signal.SIGTERM, _interrupt)
    for diagnostic in loaded.diagnostics:  # `check`'s warnings (no test rows, settings with no effect)
        if diagnostic.severity == "warning":
            click.echo(f"{diagnostic}", err=True)
    run_dir = Path(out) if out else default_run_dir(loaded.spec.name)
    echo = (lambda message: click.echo(message, err=True)) if not quiet else None

    quiet_tensorflow()
    from polytask.runtime.baseline import format_baseline
    from polytask.runtime.train import train_spec

    if not resume:  # before the affinity run and the seeds write anything into --out
        _refuse_an_out_in_use(run_dir)
    groups = _groups(loaded, baseline, groups_from, run_dir, steps, seed, allow_code, echo) if baseline == "groups" else None
    if seeds > 1:
        from polytask.runtime.baseline import compare, run_seeds
        from polytask.runtime.rundir import RunDir, jsonable

        results = run_seeds(loaded, run_dir, seeds=seeds, parallel=parallel, steps=steps, seed=seed,
                            kinds=("independent",) if baseline == "independent" else ("independent", "groups"),
                            groups=groups, allow_code=allow_code, strategy=strategy, precision=precision, echo=echo)
        report = {"name": loaded.spec.name, "spec": str(loaded.path), "seeds": [r["seed"] for r in results],
                  "runs": [str(run_dir / f"seed-{r['seed']}") for r in results], "groups": groups,
                  "baseline": compare(results)}
        run = RunDir(run_dir)
        run.create()
        run.write_report(jsonable(report))
        if output_format == "json":
            click.echo(json.dumps(jsonable(report), indent=2))
            return
        click.echo(f"trained {loaded.spec.name} for seeds {report['seeds'][0]}..{report['seeds'][-1]}: "
                   f"per-seed runs in {run_dir}/seed-<s>/, comparison in {run.report_file}")
        click.echo(format_baseline(report["baseline"]))
        return
    report = train_spec(loaded, run_dir, steps=steps, seed=seed, resume=resume, baseline=baseline,
                        allow_code=allow_code, strategy=strategy, precision=precision,
                        quiet=True if quiet or output_format == "json" else None, echo=echo, groups=groups)
    if output_format == "json":
        from polytask.runtime.rundir import jsonable

        click.echo(json.dumps(jsonable(report), indent=2))
        return
    click.echo(summary_text(report, run_dir))
    if report.get("baseline"):
        click.echo(format_baseline(report["baseline"]))


def effective_steps(loaded, steps) -> None:
    """The spec's step rules (PT218) on the step count this run will use, when --steps overrides it."""
    if steps is None:
        return
    from polytask.errors import PolytaskError
    from polytask.spec.rules import warmup_problem

    problem = warmup_problem(loaded.spec.training.schedule.warmup_steps, steps, steps_from="--steps")
    if problem:
        raise PolytaskError(problem[0], hint=problem[1], code="PT218",
                            where=loaded.where("training", "schedule", "warmup_steps"))


def _refuse_an_out_in_use(run_dir: Path) -> None:
    """A finished run's report.json (a single run, or a --seeds comparison, which has no checkpoints/)
    is not replaced by a new run; neither is a folder polytask did not write used for affinity/ or seed-<s>/."""
    from polytask.errors import RunError
    from polytask.runtime.rundir import RunDir, is_ours

    if not run_dir.is_dir():
        return
    report = RunDir(run_dir, writer=False).report_file
    if report.exists():
        raise RunError(f"{run_dir} already holds a run ({report.name}: a finished run or a --seeds comparison)",
                       hint="train a single run further with --resume --steps N, or choose a new --out directory")
    if not is_ours(run_dir):
        raise RunError(f"--out: {run_dir} is not empty and is not a polytask run directory",
                       hint="polytask trains only into a new or empty folder (or one of its own runs) and never "
                       f"overwrites files it did not write; choose another --out, e.g. {run_dir / 'run'}")


def _groups(loaded, baseline, groups_from, run_dir: Path, steps, seed, allow_code, echo) -> list:
    """[{"tasks": [...], "serves": [...]}] from a previous affinity run, or measured now."""
    from polytask.runtime import affinity

    if groups_from:
        saved = affinity.load_groups(Path(groups_from))
    else:
        if echo:
            echo("baseline groups: measuring task affinity first (polytask affinity, default settings)")
        result = affinity.measure_affinity(loaded, seed=seed, allow_code=allow_code)
        found = affinity.suggest_groups(result)
        from polytask.runtime.rundir import AFFINITY_DIR

        out = run_dir / AFFINITY_DIR
        affinity.write_outputs(out, result, found, affinity.describe_grouping(result, found, overlap=False,
                                                                             requested="auto"))
        saved = affinity.load_groups(out)
    groups, served_by = saved["groups"], saved.get("served_by") or {}
    unknown = sorted({t for g in groups for t in g} - set(loaded.spec.tasks))
    if unknown:
        from polytask.errors import PolytaskError

        raise PolytaskError(f"{saved['file']} names task '{unknown[0]}', which is not in {loaded.path}",
                            hint="pass the affinity output of this spec")
    first = {}
    for index, group in enumerate(groups):
        for task in group:
            first.setdefault(task, index)
    return [{"tasks": list(group), "serves": [t for t in group if served_by.get(t, first[t]) == index]}
            for index, group in enumerate(groups)]


def summary_text(report: dict, run_dir: Path) -> str:
    from polytask.runtime.rundir import METRICS_FILE, REPORT_FILE, SAVED_MODEL_DIR, TENSORBOARD_DIR

    lines = [f"trained {report.get('name', '')}: {report['steps']} steps in {report['wall_time_seconds']:.1f}s"
             + (" (stopped early)" if report.get("stopped_early") else "")
             + (f", {report['steady_state_steps_per_second']:.1f} steps/s steady state (after graph build and "
                f"warm-up)" if report.get("steady_state_steps_per_second") else "")]
    test = (report.get("metrics") or {}).get("test") or {}
    if not test:
        lines.append("no test metrics: the test split is empty (see the datasets' `split:`)")
    if test:
        lines.append("test metrics:")
        for key in sorted(test):
            if key != "loss":
                lines.append(f"  {key:<32} {test[key]:.4f}")
        if "loss" in test:
            label = "loss (weighted sum)" if any("/" in key for key in test) else "loss"
            lines.append(f"  {label:<32} {test['loss']:.4f}")
    lines += (report.get("learned_sharing") or {}).get("summary", [])  # e.g. ltb's discovered tree
    counts = report.get("parameters") or {}
    if counts:
        lines.append(f"parameters: {counts.get('total', 0):,} ({counts.get('shared', 0):,} shared, "
                     f"{counts.get('task_specific', 0):,} task-specific)")
    if (report.get("strategy") or {}).get("chief") is False:
        lines.append(f"run directory: {run_dir}  (written by the chief worker; this worker wrote nothing)")
    else:
        lines.append(f"run directory: {run_dir}  ({REPORT_FILE}, {METRICS_FILE}, {TENSORBOARD_DIR}/, {SAVED_MODEL_DIR}/)")
    return "\n".join(lines)
