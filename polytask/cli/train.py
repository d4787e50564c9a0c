"""`polytask train SPEC`: compile a spec and train it into a run directory."""
from __future__ import annotations

import json
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import user_errors


def default_run_dir(spec_name: str) -> Path:
    return Path("runs") / spec_name


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Run directory (default: runs/<spec name>).")
@click.option("--steps", type=click.IntRange(min=1), default=None, help="Override training.steps.")
@click.option("--seed", type=click.IntRange(min=0, max=2**31 - 1), default=None, help="Override the spec's seed.")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@click.option("--baseline", type=click.Choice(["independent"]), default=None,
              help="Also train each task alone and compare (report.json 'baseline').")
@click.option("--allow-code", is_flag=True, help="Allow `source: python` datasets to import user code.")
@click.option("--strategy", type=click.Choice(["auto", "one_device", "mirrored", "multi_worker", "tpu"]), default=None,
              help="tf.distribute strategy (default: the spec's runtime.strategy). training.batch_size "
              "is the GLOBAL batch, split over all replicas; multi_worker reads TF_CONFIG "
              "(docs/distributed.md).")
@click.option("--precision", type=click.Choice(["float32", "mixed_float16", "mixed_bfloat16"]), default=None,
              help="Compute precision (default: the spec's runtime.precision).")
@click.option("--quiet", "-q", is_flag=True, help="No progress line.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              help="Final summary as text or the report as JSON.")
@user_errors
def train(spec, out, steps, seed, resume, baseline, allow_code, strategy, precision, quiet, output_format):
    """Train SPEC: checkpoints, TensorBoard, metrics.jsonl, report.json and a SavedModel in --out."""
    from polytask.errors import PolytaskError
    from polytask.spec.loader import load_spec

    if not Path(spec).exists():
        raise PolytaskError(f"no such spec file: {spec}", hint="pass the path of a polytask YAML spec")
    loaded = load_spec(spec, check_data=True, allow_code=allow_code)
    run_dir = Path(out) if out else default_run_dir(loaded.spec.name)
    echo = (lambda message: click.echo(message, err=True)) if not quiet else None

    from polytask.runtime.train import format_baseline, train_spec

    report = train_spec(loaded, run_dir, steps=steps, seed=seed, resume=resume, baseline=baseline,
                        allow_code=allow_code, strategy=strategy, precision=precision,
                        quiet=True if quiet or output_format == "json" else None, echo=echo)
    if output_format == "json":
        from polytask.runtime.rundir import jsonable

        click.echo(json.dumps(jsonable(report), indent=2))
        return
    click.echo(summary_text(report, run_dir))
    if report.get("baseline"):
        click.echo(format_baseline(report["baseline"]))


def summary_text(report: dict, run_dir: Path) -> str:
    from polytask.runtime.rundir import METRICS_FILE, REPORT_FILE, SAVED_MODEL_DIR, TENSORBOARD_DIR

    lines = [f"trained {report.get('name', '')}: {report['steps']} steps in {report['wall_time_seconds']:.1f}s"
             + (" (stopped early)" if report.get("stopped_early") else "")
             + (f", {report['steady_state_steps_per_second']:.1f} steps/s" if report.get("steady_state_steps_per_second") else "")]
    test = (report.get("metrics") or {}).get("test") or {}
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
