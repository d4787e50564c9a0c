"""`polytask plan SPEC`: what will be built, terraform-plan style, without training (no TensorFlow)."""
from __future__ import annotations

import json

import click

from polytask.cli import main
from polytask.cli._common import format_option, input_file


@main.command()
@click.argument("spec", type=click.Path(dir_okay=False))
@format_option("text", "json")
@click.option("--allow-code", is_flag=True, help="Allow `source: python` datasets to import user code.")
def plan(spec, output_format, allow_code):
    """Show each task's shapes, the parameter groups, which tasks use them, and parameter counts."""
    from polytask.compiler.plan import build_plan, format_plan
    from polytask.spec.loader import load_spec

    input_file(spec, "spec file")
    loaded = load_spec(spec, check_data=True, allow_code=allow_code)
    result = build_plan(loaded, allow_code=allow_code)
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        click.echo(format_plan(result, spec_path=spec))
