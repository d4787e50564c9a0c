"""`polytask check PATH...`: validate specs for CI, pre-commit and editors. Never imports TensorFlow.

Exit status: 0 every spec is valid, 1 some spec is invalid, 2 usage error (bad option,
a path that does not exist, a folder without specs).
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import click

from polytask.cli import main

SPEC_SUFFIXES = (".yaml", ".yml")
_SPEC_MARKER = re.compile(rb"^polytask\s*:", re.MULTILINE)


def find_specs(paths: tuple[str, ...]) -> list[tuple[Path, str]]:
    """(path, display name) for each file given and each *.yaml/*.yml under each folder given.

    Folders are searched recursively, skipping hidden folders (.git, .venv, ...).
    Raises click.UsageError for a path that does not exist or a folder without specs.
    """
    found: list[tuple[Path, str]] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files = sorted(
                p for p in path.rglob("*")
                if p.suffix.lower() in SPEC_SUFFIXES and p.is_file()
                and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not files:
                raise click.UsageError(f"no *.yaml or *.yml files in folder '{raw}'")
            found.extend((p, str(p)) for p in files)
        elif path.exists():
            found.append((path, raw))
        else:
            raise click.UsageError(f"no such file or folder: '{raw}'")
    seen, unique = set(), []
    for path, display in found:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append((path, display))
    return unique


def looks_like_spec(path: Path) -> bool:
    """True when the file has a top-level `polytask:` key (used by --skip-non-specs)."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(1_000_000)
    except OSError:
        return True  # let the check report why it cannot be read
    return bool(_SPEC_MARKER.search(head))


@main.command()
@click.argument("paths", nargs=-1, required=True, metavar="PATH...")
@click.option("--format", "output_format", type=click.Choice(["text", "json", "github"]), default="text",
              show_default=True, help="text for people, json for programs, github for Actions annotations.")
@click.option("--no-data", is_flag=True, help="Skip the data checks (files, columns, classes); for CI without data.")
@click.option("--allow-code", is_flag=True,
              help="Import `source: python` callables to check them (this runs code from the spec).")
@click.option("--strict", is_flag=True, help="Fail (exit 1) on warnings too.")
@click.option("--skip-non-specs", is_flag=True,
              help="Ignore YAML files without a top-level `polytask:` key (for pre-commit over a whole repo).")
def check(paths, output_format, no_data, allow_code, strict, skip_non_specs):
    """Check polytask specs: YAML, schema, cross-field rules and (cheaply) the data.

    PATH is a spec file or a folder searched recursively for *.yaml and *.yml.

    \b
    Examples:
      polytask check spec.yaml
      polytask check examples/ --no-data
      polytask check specs/ --format github    # annotations in GitHub Actions
    """
    from polytask.spec.checker import check_file
    from polytask.spec.diagnostics import FORMATTERS, WARNING, has_errors

    files = find_specs(paths)
    if skip_non_specs:
        files = [(p, d) for p, d in files if looks_like_spec(p)]
    results = []
    failed = False
    for path, display in files:
        result = check_file(path, display, check_data=not no_data, allow_code=allow_code)
        results.append((display, result.diagnostics))
        if has_errors(result.diagnostics) or (strict and any(d.severity == WARNING for d in result.diagnostics)):
            failed = True
    output = FORMATTERS[output_format](results)
    click.echo(output)
    sys.exit(1 if failed else 0)
