"""`polytask affinity SPEC`: which tasks help each other (TAG lookahead affinity) and how to group them."""
from __future__ import annotations

import json
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option, input_file, quiet_tensorflow
from polytask.cli._requires import needs_tensorflow
from polytask.limits import MAX_INT as MAX_SEED


class GroupsParam(click.ParamType):
    """A positive number of groups, or `auto`."""

    name = "K|auto"

    def convert(self, value, param, ctx):
        if isinstance(value, int) or value == "auto":
            return value
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
        if number < 1:
            self.fail(f"'{value}' is neither a positive number of groups nor 'auto'", param, ctx)
        return number


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option("--steps", type=click.IntRange(min=1), default=None,
              help="Steps of the measuring run (default: training.steps, at most 1000).")
@click.option("--every", type=click.IntRange(min=1), default=5, show_default=True,
              help="Measure the lookahead affinities every N steps.")
@click.option("--groups", "groups", type=GroupsParam(), default="auto", show_default=True,
              help="At most K groups (fewer when they score higher), or 'auto': every K from 1 to T, penalised per "
              "extra group (docs/multitask.md).")
@click.option("--overlap", is_flag=True, help="Let a task sit in several groups; it is served by its best one.")
@click.option("--penalty", type=click.FloatRange(min=0.0), default=None,
              help="auto: cost of each extra group in units of the mean |affinity| (default 1).")
@click.option("--lookahead-lr", type=click.FloatRange(min=0.0, min_open=True), default=None,
              help="Learning rate of the lookahead SGD step (default: the optimizer's current rate).")
@click.option("--seed", type=click.IntRange(min=0, max=MAX_SEED), default=None, help="Override the spec's seed.")
@click.option("--out", "out", type=click.Path(file_okay=False), default=None,
              help="Write affinity.json and the affinity.png heatmap here.")
@click.option("--spec-out", "spec_out", type=click.Path(file_okay=False), default=None,
              help="Write one ready-to-train spec per suggested group here.")
@click.option("--allow-code", is_flag=True, help="Allow `source: python` datasets to import user code.")
@click.option("--quiet", "-q", is_flag=True, help="No progress messages.")
@format_option("text", "json", help="A table, or one JSON object {tasks, affinity, groups, steps} (also on error).")
@needs_tensorflow("affinity")
def affinity(spec, steps, every, groups, overlap, penalty, lookahead_lr, seed, out, spec_out, allow_code, quiet,
             output_format):
    """Measure inter-task affinity during a short multi-task run of SPEC and suggest task groups."""
    from polytask.spec.loader import load_spec

    if penalty is not None and groups != "auto":
        raise click.UsageError(f"--penalty prices extra groups when choosing their number (--groups auto); with "
                               f"--groups {groups} it would have no effect: drop one of the two")
    input_file(spec, "spec file")
    loaded = load_spec(spec, check_data=True, allow_code=allow_code)
    quiet_tensorflow()
    from polytask.runtime import affinity as run

    if loaded.spec.is_meta:
        run._refuse_unsupported(loaded.spec)
    # Refuse existing outputs before the (minutes-long) run, not after it.
    if out:
        run._refuse_existing([Path(out) / run.AFFINITY_FILE, Path(out) / run.AFFINITY_PNG])
    if spec_out:  # there is always a first group
        run._refuse_existing([Path(spec_out) / f"{loaded.spec.name}-group1.yaml"])
    echo = None if quiet or output_format == "json" else (lambda message: click.echo(message, err=True))
    result = run.measure_affinity(loaded, steps=steps, every=every, seed=seed, lookahead_lr=lookahead_lr,
                                  allow_code=allow_code, echo=echo)
    found = run.suggest_groups(result, groups=groups, overlap=overlap, penalty=penalty)
    result["groups_requested"] = groups
    written = []
    if out:
        written += run.write_outputs(Path(out), result, found,
                                     run.describe_grouping(result, found, overlap=overlap, requested=groups))
    if spec_out:
        written += run.write_group_specs(Path(spec_out), loaded, result, found, allow_code=allow_code)
    if output_format == "json":
        click.echo(json.dumps(run.document(result, found)))
        return
    click.echo(run.format_table(result, found, overlap=overlap))
    for path in written:
        click.echo(f"wrote {path}")
