"""`polytask predict RUN_DIR --task NAME INPUT`: predictions of one task from the exported SavedModel."""
from __future__ import annotations

import json

import click

from polytask.cli import main
from polytask.cli._common import user_errors
from polytask.cli._requires import needs_tensorflow


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--task", required=True, help="Which task's serving signature to use.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write predictions here (.csv, or .npz for raw arrays); default: csv on stdout.")
@click.option("--format", "output_format", type=click.Choice(["csv", "json"]), default="csv",
              help="stdout format when no --output is given.")
@user_errors
@needs_tensorflow("predict")
def predict(run_dir, input_path, task, output, output_format):
    """Predict TASK for each row of INPUT (a csv with a header, or an npz)."""
    from polytask.runtime.serving import predict_run, table_csv

    result = predict_run(run_dir, task, input_path, output)
    if output:
        click.echo(f"wrote {result['rows']} predictions for task '{task}' to {output}", err=True)
    elif output_format == "json":
        click.echo(json.dumps({"task": task, "predictions": result["table"]}, indent=2))
    else:
        click.echo(table_csv(result["table"]), nl=False)
