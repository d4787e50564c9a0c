"""`polytask report RUN_DIR`: an HTML page with figures of a run. Never imports TensorFlow."""
from __future__ import annotations

import json

import click

from polytask.cli import main
from polytask.cli._common import format_option, input_file


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", type=click.Path(), default=None,
              help="Folder for index.html and its PNGs (default: RUN_DIR/report). A folder holding files "
              "that polytask report did not write is refused.")
@click.option("--affinity", "affinity", type=click.Path(), default=None,
              help="An affinity.json from `polytask affinity` (default: RUN_DIR/affinity.json or "
              "RUN_DIR/affinity/affinity.json, when present).")
@format_option("text", "json")
def report(run_dir, out, affinity, output_format):
    """Write RUN_DIR's report: final metrics, baseline, adaptation, learning curves, affinity, plan.

    \b
    Example:
      polytask train examples/digits_hard.yaml --baseline independent --out runs/digits
      polytask report runs/digits          # open runs/digits/report/index.html
    """
    from polytask.runtime.report import write_report

    if affinity is not None:
        affinity = input_file(affinity, "affinity file")
    written = write_report(run_dir, out=out, affinity=affinity)
    if output_format == "json":
        click.echo(json.dumps(written, indent=2))
        return
    for notice in written["notices"]:
        click.echo(f"note: {notice}", err=True)
    click.echo(f"report: {written['page']} ({len(written['images'])} figures)")
