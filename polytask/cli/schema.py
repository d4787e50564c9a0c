"""`polytask schema [--output FILE]`: the JSON Schema of the spec language (no TensorFlow)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option, output_file


@main.command()
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), default=None,
              help="Write the schema to FILE instead of standard output.")
@format_option("text", "json", help="The schema is JSON either way; with --output, json reports what was written "
              "as one JSON object.")
def schema(output, output_format):
    """Print the JSON Schema of polytask specs, for editor completion and validation.

    \b
    Editors with yaml-language-server (VS Code's YAML extension, Neovim, ...) complete and
    check a spec whose first line is:
      # yaml-language-server: $schema=polytask.schema.json

    \b
    Example:
      polytask schema --output polytask.schema.json
    """
    from polytask.spec.schema import json_schema_text

    text = json_schema_text()
    if output is None:
        click.echo(text, nl=False)
        return
    path = output_file(output)
    if path.exists() and not _is_a_polytask_schema(path):  # refreshing our own schema is fine; anything else is not ours
        from polytask.errors import PolytaskError

        raise PolytaskError(f"{output} already exists and is not a polytask schema; polytask does not overwrite it",
                            hint="move it away, or choose another --output")
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot write {output}: {exc.strerror or exc}") from None
    if output_format == "json":
        click.echo(json.dumps({"wrote": str(path)}))
    else:
        click.echo(f"wrote the spec JSON Schema to {output}", err=True)


def _is_a_polytask_schema(path: Path) -> bool:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(content, dict) and str(content.get("$id", "")).startswith("urn:polytask:spec:")
