"""Generate the reference tables of the docs from the code (models, registries, codes).

    python -m polytask.spec.reference --all        # docs/spec-language.md, docs/data-sources.md, README.md
    python -m polytask.spec.reference --write docs/spec-language.md docs/data-sources.md

Rewrites only the parts between `<!-- generated:NAME -->` markers (fields, codes, concepts,
sources, generators) and their `<!-- end -->`, so the prose around them is hand-written and
the tables can never drift from the code (tests/test_spec_docs.py checks they are up to
date). `--all` takes the paths relative to the current folder: run it from the repository.
"""
from __future__ import annotations

import argparse
import re
import types
import typing
from pathlib import Path
from typing import Any, Union

import annotated_types
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from polytask.spec import layers, models
from polytask.spec.diagnostics import CODES
from polytask.spec.registry import (FAMILIES, GENERATORS, LAYERS, LOSSES, OPTIMIZERS, REGISTRIES, SCHEDULES, SHARING,
                                    SOURCES, WEIGHTINGS)
from polytask.spec.suggest import as_text
from polytask.spec.types import NoParams

def _params_entries(registry, prefix: str) -> list[tuple[str, type[BaseModel]]]:
    """One table per params model of a registry's concepts (concepts sharing a model share a table)."""
    by_model: dict[type, list[str]] = {}
    for name, descriptor in registry.items():
        if descriptor.Params is not NoParams and descriptor.Params.model_fields:
            by_model.setdefault(descriptor.Params, []).append(name)
    return [(prefix + ", ".join(names), model) for model, names in by_model.items()]


def _tagged_entries(registry, prefix: str = "") -> list[tuple[str, type[BaseModel]]]:
    """One table per tagged params model (`sharing: hard`), then one per mapping nested in it (`inner`)."""
    out = []
    for name, descriptor in registry.items():
        out.append((f"{prefix}{registry.tag}: {name}", descriptor.Params))
        for field, info in descriptor.Params.model_fields.items():
            nested = info.annotation
            if isinstance(nested, type) and issubclass(nested, BaseModel) and nested is not NoParams:
                _NAMES.setdefault(nested, field)
                out.append((f"`{field}`", nested))
    return out


def _source_entries() -> list[tuple[str, type[BaseModel]]]:
    """Each data source's params table, followed by the tables of the models nested in it
    (a tfrecord feature; the synthetic source's generator kinds)."""
    out = []
    for name, source in SOURCES.items():
        out.append((f"source: {name}", source.Params))
        out.extend(source.reference_models())
    return out


def _entries(entries) -> list[tuple[str, type[BaseModel]]]:
    """A section's entries: (label, model) pairs, and callables that generate them from a registry."""
    out = []
    for entry in entries() if callable(entries) else entries:
        out.extend(entry() if callable(entry) else [entry])
    return out


SECTIONS: list = [
    ("Top level", [("spec", models.Spec)]),
    ("Datasets (`datasets.<name>`)", [
        ("every source: `split`", models.Split),
        lambda: _source_entries(),
    ]),
    ("Tasks (`tasks.<name>`)", [("task", models.Task)]),
    ("Task families (`family`)", [
        lambda: _tagged_entries(FAMILIES),
    ]),
    ("Structure (`structure`)", [
        lambda: _tagged_entries(SHARING),
    ]),
    ("Layers (items of `model`, `trunk`, `head`)", lambda: _params_entries(LAYERS, "")),
    ("Losses (`loss`, with parameters: `{NAME: {...}}`)", lambda: _params_entries(LOSSES, "loss: ")),
    ("Training (`training`)", [
        ("training", models.Training),
        lambda: _params_entries(OPTIMIZERS, "optimizer: "),
        lambda: _tagged_entries(SCHEDULES, "schedule "),
        ("sampling: {temperature: T}", models.TemperatureSampling),
        lambda: _params_entries(WEIGHTINGS, "weighting: "),
        ("`early_stopping`", models.EarlyStopping),
    ]),
    ("Runtime (`runtime`)", [("runtime", models.Runtime)]),
]

_NAMES = {
    models.Split: "split", models.Task: "task", models.Training: "training", models.Runtime: "runtime",
    models.Optimizer: "optimizer", models.EarlyStopping: "early_stopping",
    models.Weighting: "weighting", layers.Layer: "layer", models.TemperatureSampling: "{temperature: T}",
    NoParams: "no parameters",
}


def _constraints(metadata) -> list[str]:
    out = []
    for item in metadata:
        for attr, symbol in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None and isinstance(item, getattr(annotated_types, attr.capitalize())):
                if attr == "le" and value == models.MAX_INT:
                    continue  # every count has this cap; listing it everywhere is noise
                out.append(f"{symbol} {value:,}" if isinstance(value, int) and abs(value) > 9999 else f"{symbol} {value}")
        if isinstance(item, annotated_types.MaxLen):
            out.append(f"length ≤ {item.max_length}")
        if isinstance(item, annotated_types.MinLen):
            out.append(f"length ≥ {item.min_length}")
        pattern = getattr(item, "pattern", None)
        if pattern == r"^[A-Za-z_][A-Za-z0-9_]*$":
            out.append("identifier")
        elif pattern:
            out.append(f"matches `{pattern}`")
        if getattr(item, "allow_inf_nan", None) is False:
            out.append("finite")
    return out


def render_type(annotation: Any, metadata=()) -> str:
    constraints = _constraints(metadata)
    while typing.get_origin(annotation) is typing.Annotated:
        args = typing.get_args(annotation)
        annotation = args[0]
        for extra in args[1:]:
            constraints.extend(_constraints(getattr(extra, "metadata", [extra])))
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        text = " \\| ".join(f"`{a}`" for a in args)
    elif origin in (Union, types.UnionType):
        members = [a for a in args if a is not type(None)]
        if all(isinstance(m, type) and issubclass(m, BaseModel) for m in members) and len(members) > 1:
            text = "one of the variants below"
        else:
            text = " or ".join(render_type(m) for m in members)
        if type(None) in args:
            text += " or null"
    elif origin is list:
        text = f"list of {render_type(args[0])}"
    elif origin is dict:
        text = f"mapping of name → {render_type(args[1])}"
    elif origin is tuple:
        text = "[" + ", ".join(render_type(a) for a in args) + "]"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = f"`{_NAMES.get(annotation) or getattr(annotation, 'reference_name', annotation.__name__)}` mapping"
    elif annotation is typing.Any or annotation is dict:
        text = "mapping"
    else:
        text = {int: "int", float: "number", str: "string", bool: "bool"}.get(annotation, str(annotation))
    return text + (f" ({', '.join(dict.fromkeys(constraints))})" if constraints else "")


def _default(info) -> str:
    if info.is_required():
        return "**required**"
    if info.default_factory is not None:
        value = info.default_factory()
    else:
        value = info.default
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        dumped = value.model_dump(exclude_defaults=True)
        return f"`{_NAMES.get(type(value), '')}` defaults" if not dumped else f"`{_yaml(value.model_dump())}`"
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return "`[" + ", ".join(v.kind for v in value) + "]`"
    return f"`{_yaml(value)}`"


def _yaml(value: Any) -> str:
    return as_text(value)


def model_table(model: type[BaseModel]) -> str:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        key = info.alias or name
        description = (info.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{key}` | {render_type(info.annotation, info.metadata)} | {_default(info)} | {description} |")
    return "\n".join(rows)


def fields_markdown() -> str:
    parts = []
    for title, entries in SECTIONS:
        entries = _entries(entries)
        if not entries:
            continue
        parts.append(f"### {title}\n")
        for label, model in entries:
            doc = (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
            parts.append(f"#### {label}\n")
            if doc and not doc.startswith(("Usage docs", "!!!")):
                parts.append(f"{doc}\n")
            parts.append(model_table(model) + "\n")
    return "\n".join(parts).rstrip() + "\n"


def codes_markdown() -> str:
    rows = ["| code | default severity | meaning |", "|---|---|---|"]
    for code in CODES.values():
        rows.append(f"| {code.code} | {code.severity} | {code.title} |")
    return "\n".join(rows) + "\n"


def _form(descriptor, form: str) -> str:
    missing = descriptor.supports(form)
    return "yes" if missing is None else f"no: {missing}"


_CONCEPT_COLUMNS = {
    "layer": {"in per-task heads": lambda d: _form(d, "stacked"), "in meta-learning": lambda d: _form(d, "functional")},
    "loss": {"measures": lambda d: d.measures},
    "metric": {"measures": lambda d: d.measures},
}


def names_markdown() -> str:
    """One line per kind with every registered name: README's overview of the vocabulary."""
    lines = []
    for kind, registry in REGISTRIES.items():
        lines.append(f"- {registry.plural}: " + ", ".join(f"`{name}`" for name in registry.names()))
    return "\n".join(lines) + "\n"


def concepts_markdown() -> str:
    """Every registered concept, by kind: name, what it is, where it comes from."""
    parts = []
    for kind, registry in REGISTRIES.items():
        extra = _CONCEPT_COLUMNS.get(kind, {})
        rows = [f"**{registry.plural.capitalize()}** (`{kind}`)\n",
                "| name | what it is | parameters | " + "".join(f"{title} | " for title in extra) + "from |",
                "|---|---|---|" + "---|" * len(extra) + "---|"]
        for name, descriptor in registry.items():
            fields = ", ".join(f"`{info.alias or f}`" for f, info in descriptor.Params.model_fields.items()
                               if f != registry.tag) or "none"
            origin = "built in" if descriptor.origin.builtin else f"plugin `{descriptor.origin.plugin}`"
            cells = [descriptor.summary(), fields, *(column(descriptor) for column in extra.values()), origin]
            rows.append(f"| `{name}` | " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        parts.append("\n".join(rows) + "\n")
    return "\n".join(parts)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def sources_markdown() -> str:
    """docs/data-sources.md's table of sources: default input, other columns, what it reads."""
    rows = ["| source | input (default) | other columns | reads |", "|---|---|---|---|"]
    for name, source in SOURCES.items():
        rows.append(f"| `{name}` | {_cell(source.default_input)} | {_cell(source.other_columns)} | "
                    f"{_cell(source.reads)} |")
    return "\n".join(rows) + "\n"


def generators_markdown() -> str:
    """docs/data-sources.md's table of generator kinds: what each is, its parameters."""
    rows = ["| kind | what it is | parameters |", "|---|---|---|"]
    for name, generator in GENERATORS.items():
        fields = ", ".join(f"`{info.alias or f}`" for f, info in generator.Params.model_fields.items()
                           if f != GENERATORS.tag) or "none"
        rows.append(f"| `{name}` | {_cell(generator.summary())} | {fields} |")
    return "\n".join(rows) + "\n"


GENERATED = {"names": names_markdown, "fields": fields_markdown, "codes": codes_markdown, "concepts": concepts_markdown,
             "sources": sources_markdown, "generators": generators_markdown}

DOCS = (Path("docs") / "spec-language.md", Path("docs") / "data-sources.md", Path("README.md"))


def update(text: str) -> str:
    """Replace every `<!-- generated:NAME -->...<!-- end -->` block with fresh output."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        return f"<!-- generated:{name} -->\n{GENERATED[name]()}<!-- end -->"

    return re.sub(r"<!-- generated:(\w+) -->\n.*?<!-- end -->", replace, text, flags=re.DOTALL)


def main() -> None:
    parser = argparse.ArgumentParser(description="Regenerate the tables of the docs (docs/spec-language.md, "
                                     "docs/data-sources.md).")
    parser.add_argument("--write", type=Path, nargs="+", help="markdown files to update in place")
    parser.add_argument("--all", action="store_true", help=f"update {' and '.join(map(str, DOCS))}")
    args = parser.parse_args()
    files = list(args.write or []) + (list(DOCS) if args.all else [])
    for file in files:
        file.write_text(update(file.read_text()))
    if not files:
        print(fields_markdown())
        print(codes_markdown())


if __name__ == "__main__":
    main()
