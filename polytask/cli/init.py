"""`polytask init [--pattern NAME] [PATH]`: write a commented starter spec.

Each sharing pattern owns its starter (`starter` in `polytask.compiler.sharing.<name>`);
every starter uses data that needs no files (generated from the seed), so it passes
`polytask check` as written and trains as soon as it is saved; tests/test_cli_check.py
checks every one.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option
from polytask.errors import PolytaskError, special_file


class PatternChoice(click.Choice):
    """The sharing patterns that have a starter spec, looked up only when the option is used:
    every command imports this module, and the registry loads the whole spec language."""

    def __init__(self):
        super().__init__([])

    @property
    def choices(self):
        from polytask.spec.registry import SHARING

        return SHARING.where(lambda d: d.starter)

    @choices.setter
    def choices(self, value):  # click.Choice.__init__ assigns it
        pass

_HEADER = """\
# polytask spec (format 1): {pattern} sharing.
#   check it:   polytask check {filename}
#   train it:   polytask train {filename}
# Reference: docs/spec-language.md. Editor completion: run
#   polytask schema -o polytask.schema.json
# and make the first line of this file
#   # yaml-language-server: $schema=polytask.schema.json
polytask: 1
name: {name}
seed: 0                       # every random choice (data splits, init, sampling) follows it
"""


def starter_spec(pattern: str, name: str, filename: str) -> str:
    """The commented starter spec for a sharing pattern."""
    from polytask.spec.registry import REGISTRIES, SHARING

    body = re.sub(r"<<(\w+)>>", lambda m: ", ".join(REGISTRIES[m.group(1)].names()), SHARING.get(pattern).starter)
    return _HEADER.format(pattern=pattern, name=name, filename=filename) + body


def _spec_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-._") or "my-spec"
    if not stem[0].isalnum():
        stem = f"spec-{stem}"
    return stem[:128]


@main.command()
@click.argument("path", required=False, default="polytask.yaml", type=click.Path(dir_okay=True))
@click.option("--pattern", type=PatternChoice(), default="pooled", show_default=True,
              help="The sharing pattern of the starter spec.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@format_option("text", "json")
def init(path, pattern, force, output_format):
    """Write a commented starter spec to PATH (default polytask.yaml) that passes `polytask check`.

    \b
    Examples:
      polytask init                          # pooled multi-task, ./polytask.yaml
      polytask init --pattern hard mtl.yaml
      polytask init --pattern meta specs/    # writes specs/polytask.yaml
    """
    target = Path(path)
    if target.is_dir():
        target = target / "polytask.yaml"
    problem = special_file(target)
    if problem:
        raise PolytaskError(problem, hint="choose another PATH")
    if target.is_dir() or (target.exists() and not force):
        raise PolytaskError(f"{target} already exists", hint="pass --force to overwrite it, or choose another PATH"
                            if not target.is_dir() else "choose another PATH")
    if not target.parent.exists():
        raise PolytaskError(f"folder {target.parent} does not exist", hint="create it first")
    text = starter_spec(pattern, _spec_name(target), str(target))
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise PolytaskError(f"cannot write {target}: {exc.strerror or exc}") from None
    if output_format == "json":
        click.echo(json.dumps({"wrote": str(target), "pattern": pattern}))
    else:
        click.echo(f"wrote {target} ({pattern} sharing); next: polytask check {target}")
