"""`polytask predict RUN_DIR --task NAME INPUT`: predictions of one task from the exported SavedModel."""
from __future__ import annotations

import json
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option, input_file, output_file, quiet_tensorflow
from polytask.cli._requires import needs_tensorflow


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option("--task", required=True, help="Which task's serving signature to use.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None,
              help="Write predictions here (.csv, or .npz for raw arrays); default: csv on stdout.")
@click.option("--force", is_flag=True, help="Overwrite --output if it already exists.")
@format_option("csv", "json", default="csv",
               help="stdout format: csv of predictions, or one JSON object (with --output: what was written).")
@needs_tensorflow("predict")
def predict(run_dir, input_path, task, output, force, output_format):
    """Predict TASK for each row of INPUT (a csv with a header, or an npz).

    \b
    INPUT holds the task's input columns, the ones it was trained on:
      * csv: a header naming the task's input columns (its `features:`, or every
        column of the training csv that no task predicts), in any order; other
        columns are ignored. A csv with exactly as many columns as the model's input
        width is taken as is. Cells must be numbers; none may be empty.
      * npz: one array per input column, or one array `x` of shape
        (rows, *input shape).
    `polytask plan SPEC --format json` lists each task's `input_columns`;
    RUN_DIR/saved_model/polytask.json records them too.

    \b
    Example:
      polytask predict runs/csv-hard new_rows.csv --task label -o predictions.csv
    """
    from polytask.runtime.rundir import existing_run

    existing_run(run_dir)  # a wrong RUN_DIR is named before the input
    input_file(input_path, "input file")
    if output:
        output_file(output)
        _refuse_writing_over_inputs(Path(output), Path(input_path), Path(run_dir))
        if Path(output).exists() and not force:
            from polytask.errors import PolytaskError

            raise PolytaskError(f"--output {output} already exists; polytask does not overwrite a file unless told to",
                                hint="pass --force to replace it, or choose another --output file")
    quiet_tensorflow()
    from polytask.runtime.serving import predict_run, table_csv

    result = predict_run(run_dir, task, input_path, output)
    if output:
        if output_format == "json":
            click.echo(json.dumps({"task": task, "rows": result["rows"], "output": output}))
        else:
            click.echo(f"wrote {result['rows']} predictions for task '{task}' to {output}", err=True)
    elif output_format == "json":
        click.echo(json.dumps({"task": task, "predictions": result["table"]}, indent=2))
    else:
        click.echo(table_csv(result["table"]), nl=False)


def _refuse_writing_over_inputs(output: Path, input_path: Path, run_dir: Path) -> None:
    """--output must not replace INPUT or a file of the run it predicts from (either would be lost)."""
    from polytask.errors import UsageError

    target = output.resolve()
    if _same_file(target, input_path):  # the same file also through a symlink or a hard link
        raise UsageError(f"--output {output} is the INPUT file; writing the predictions there would replace it",
                         hint="choose another --output file")
    if target.exists() and target.is_relative_to(run_dir.resolve()):
        raise UsageError(f"--output {output} is a file of RUN_DIR {run_dir}; writing the predictions there would "
                         "replace it", hint="choose an --output file outside the run directory")


def _same_file(a: Path, b: Path) -> bool:
    import os

    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return False
