"""`polytask report RUN_DIR`: an HTML page with figures of a run. Never imports TensorFlow."""
from __future__ import annotations

import json
import sys

import click

from polytask.cli import main


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--out", "out", type=click.Path(), default=None,
              help="Folder for index.html and its PNGs (default: RUN_DIR/report). A folder holding files "
              "that polytask report did not write is refused.")
@click.option("--affinity", "affinity", type=click.Path(), default=None,
              help="An affinity.json from `polytask affinity` (default: RUN_DIR/affinity.json or "
              "RUN_DIR/affinity/affinity.json, when present).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text",
              help="What was written, as text or JSON (errors too).")
def report(run_dir, out, affinity, output_format):
    """Write RUN_DIR's report: learning curves, final metrics, baseline, adaptation, affinity, plan.

    \b
    Example:
      polytask train examples/digits_hard.yaml --baseline independent --out runs/digits
      polytask report runs/digits          # open runs/digits/report/index.html
    """
    from polytask.errors import PolytaskError
    from polytask.runtime.report import write_report

    try:
        written = write_report(run_dir, out=out, affinity=affinity)
    except PolytaskError as exc:
        if output_format == "json":
            click.echo(json.dumps({"error": {"message": exc.message, "hint": exc.hint}}, indent=2))
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    if output_format == "json":
        click.echo(json.dumps(written, indent=2))
        return
    for notice in written["notices"]:
        click.echo(f"note: {notice}", err=True)
    click.echo(f"report: {written['page']} ({len(written['images'])} figures)")
