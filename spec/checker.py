"""One pass over a spec file that finds every problem: YAML, schema, cross-field rules, data.

    result = check_file("spec.yaml")            # never raises for a bad spec
    result.valid, result.spec, result.diagnostics

The stages feed each other but none stops the others: a file whose schema fails in one
task still gets its other tasks, its data and its rules checked (on the parts that did
validate), so a user fixes everything in one round. Only YAML that cannot be read at all
ends the pass early. `load_spec` (the compiler's entry point) is built on this.
"""
from __future__ import annotations

import functools
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from pydantic import TypeAdapter, ValidationError

from polytask.errors import special_file
from polytask.spec.diagnostics import Diagnostic, has_errors, sort_key
from polytask.spec.models import Spec
from polytask.spec.rules import RuleContext, run_rules
from polytask.spec.source import SourceMap, read_yaml
from polytask.spec.validation import validate

EXTENSION_PREFIX = "x-"


@dataclass
class CheckResult:
    """The outcome of checking one spec: the Spec when valid, and every diagnostic."""

    filename: str
    path: Optional[Path]
    spec: Optional[Spec]
    diagnostics: list = field(default_factory=list)
    facts: dict = field(default_factory=dict)
    source_map: Optional[SourceMap] = None

    @property
    def valid(self) -> bool:
        return self.spec is not None and not has_errors(self.diagnostics)

    @property
    def errors(self) -> list:
        return [d for d in self.diagnostics if d.is_error]


@functools.lru_cache(maxsize=None)
def _adapter(annotation: Any) -> TypeAdapter:
    return TypeAdapter(annotation)


def _partial_spec(data: dict) -> tuple[Spec, set]:
    """A Spec built from the sections (and dataset/task entries) that validate on their own."""
    values: dict[str, Any] = {}
    invalid: set[str] = set()
    for name, info in Spec.model_fields.items():
        key = info.alias or name
        if key not in data:
            continue
        raw = data[key]
        origin = typing.get_origin(info.annotation)
        if origin is dict and isinstance(raw, dict):
            key_type, value_type = typing.get_args(info.annotation)
            good = {}
            for entry, value in raw.items():
                try:
                    _adapter(key_type).validate_python(entry)
                    good[entry] = _adapter(value_type).validate_python(value)
                except ValidationError:
                    continue
            values[name] = good
            continue
        try:
            values[name] = _adapter(info.annotation).validate_python(raw)
        except ValidationError:
            invalid.add(key)
    for name, info in Spec.model_fields.items():
        if name not in values and not info.is_required():
            values[name] = info.get_default(call_default_factory=True)
    values.setdefault("polytask", 1)
    values.setdefault("name", "invalid")
    fields_set = {name for name in values if (Spec.model_fields[name].alias or name) in data}
    return Spec.model_construct(_fields_set=fields_set, **values), invalid


def check_source(data: bytes | str, filename: str = "<spec>", base_dir: Optional[Path] = None, *,
               check_data: bool = True, allow_code: bool = False) -> CheckResult:
    """Check spec text or bytes. `base_dir` is where relative data paths resolve (default: cwd)."""
    base = Path(base_dir) if base_dir is not None else Path.cwd()
    result = CheckResult(filename=filename, path=None, spec=None)
    try:
        _check(data, filename, base, check_data, allow_code, result)
    except Exception as exc:  # a bug must not become a traceback; PT900 asks for a report
        result.spec = None
        result.diagnostics.append(Diagnostic("PT900", f"internal error: {type(exc).__name__}: {exc}", file=filename,
                                             hint="this is a bug in polytask; please report it with the spec"))
    result.diagnostics = _dedupe(result.diagnostics + plugin_diagnostics(filename))
    return result


def plugin_diagnostics(filename: str) -> list[Diagnostic]:
    """A PT020 warning per installed plugin that could not be used (it may be why a name is unknown)."""
    from polytask.spec.registry import plugin_problems

    return [Diagnostic("PT020", problem.message, file=filename, line=None, column=None, hint=problem.hint)
            for problem in plugin_problems()]


def _check(data, filename: str, base: Path, want_data: bool, allow_code: bool, result: CheckResult) -> None:
    document = read_yaml(data, filename)
    result.diagnostics.extend(document.diagnostics)
    result.source_map = document.source_map
    if document.data is None:
        return
    # Top-level `x-...` keys are free-form (a place for YAML anchors, as in docker compose).
    data = {k: v for k, v in document.data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
    spec, schema_diags = validate(Spec, data, document.source_map, filename)
    result.diagnostics.extend(schema_diags)
    invalid: set = set()
    working = spec
    if working is None:
        working, invalid = _partial_spec(data)
    ctx = RuleContext(spec=working, raw=data, source_map=document.source_map, filename=filename,
                      check_data=want_data, allow_code=allow_code, base_dir=base, invalid=invalid)

    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path

    from polytask.spec.data_checks import probe, static_facts

    if want_data:
        def report(code, message, path, hint=None):
            ctx.report(code, message, path, hint=hint)

        for name, dataset in working.datasets.items():
            ctx.facts[name] = probe(name, dataset, resolve, report)
    else:
        for name, dataset in working.datasets.items():
            ctx.facts[name] = static_facts(dataset)
    result.diagnostics.extend(run_rules(ctx))
    result.facts = ctx.facts
    result.spec = spec


def check_file(path, display: Optional[str] = None, *, check_data: bool = True,
               allow_code: bool = False) -> CheckResult:
    """Check one spec file; relative data paths resolve against the file's folder."""
    path = Path(path)
    filename = display or str(path)
    problem = special_file(path)
    if problem:  # opening a FIFO would wait for a writer forever
        return CheckResult(filename=filename, path=path, spec=None, diagnostics=[
            Diagnostic("PT001", problem, file=filename, line=None, column=None,
                       hint="pass the spec file itself")])
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return CheckResult(filename=filename, path=path, spec=None, diagnostics=[
            Diagnostic("PT001", f"cannot read {filename}: {reason}", file=filename, line=None, column=None)])
    result = check_source(data, filename, path.resolve().parent, check_data=check_data, allow_code=allow_code)
    result.path = path
    return result



def inert_defaults(content: dict, explicit: dict) -> dict:
    """`content` (a spec with every default filled in) without the filled-in defaults that have no
    effect for its sharing pattern (PT215: meta_batch in a hard spec, batch_size in a meta one).

    A run writes its spec resolved; without this, checking or retraining from that file warns about
    settings its author never wrote. Keys the author did write (`explicit`) are kept, warnings and all.
    """
    import copy
    import json

    content = copy.deepcopy(content)
    for diagnostic in check_source(json.dumps(content), check_data=False).diagnostics:
        if diagnostic.code != "PT215" or not diagnostic.path:
            continue
        keys = diagnostic.path.split(".")
        if _lookup(explicit, keys) is _MISSING:
            parent = _lookup(content, keys[:-1])
            if isinstance(parent, dict):
                parent.pop(keys[-1], None)
    return content


_MISSING = object()


def _lookup(tree: Any, keys: list) -> Any:
    for key in keys:
        if not isinstance(tree, dict) or key not in tree:
            return _MISSING
        tree = tree[key]
    return tree


def _dedupe(diagnostics: list) -> list:
    seen, out = set(), []
    for d in sorted(diagnostics, key=sort_key):
        key = (d.code, d.line, d.column, d.message)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out
