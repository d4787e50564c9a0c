"""Schema validation: run pydantic on the plain data and turn its errors into diagnostics.

Pydantic reports an error at a `loc` such as `("datasets", "d", "sklearn", "name")` where
some parts are union tags that do not exist in the YAML ("sklearn" above). `data_path`
walks a `loc` against the actual data, keeping only parts that exist, so every error maps
to the line and column of the key or value the user wrote. Unknown keys and bad choices get
a "did you mean" from the set of names the model allows at that place.
"""
from __future__ import annotations

import functools
import re
import types
import typing
from typing import Any, Iterable, Optional, Union

import pydantic
from pydantic import BaseModel

from polytask.spec.diagnostics import MAX_REPORTS, Diagnostic
from polytask.spec.source import SourceMap, dotted
from polytask.spec.suggest import ascii_name, closest, did_you_mean, one_of

_TYPE_WORDS = {
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "set_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": "one of the allowed names",
}
_RANGE = {
    "greater_than": "greater than {gt}",
    "greater_than_equal": "at least {ge}",
    "less_than": "less than {lt}",
    "less_than_equal": "at most {le}",
    "multiple_of": "a multiple of {multiple_of}",
}
_IDENTIFIER = r"^[A-Za-z_][A-Za-z0-9_]*$"


def shown(value: Any) -> str:
    """A short YAML-ish rendering of a value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def data_path(loc: Iterable, data: Any) -> tuple[tuple, bool]:
    """The part of `loc` that exists in `data`, and whether all of it did."""
    path, node, complete = [], data, True
    for part in loc:
        if isinstance(node, dict) and isinstance(part, str) and part in node:
            path.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            path.append(part)
            node = node[part]
        else:
            complete = False
    return tuple(path), complete


def value_at(data: Any, path: Iterable) -> Any:
    node = data
    for part in path:
        node = node[part]
    return node


# --------------------------------------------------------------------------- walking the types


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _members(tp: Any) -> list:
    tp = _strip(tp)
    if typing.get_origin(tp) in (Union, types.UnionType):
        out = []
        for member in typing.get_args(tp):
            if member is not type(None):
                out.extend(_members(member))
        return out
    return [tp]


def _field(model: type[BaseModel], name: str):
    for field_name, info in model.model_fields.items():
        if name == field_name or name == info.alias:
            return info
    return None


def _tag_of(member: Any) -> list[str]:
    """Discriminator values (and the class name) a union member answers to in a pydantic loc."""
    tags = []
    if isinstance(member, type) and issubclass(member, BaseModel):
        tags.append(member.__name__)
        for info in member.model_fields.values():
            ann = _strip(info.annotation)
            if typing.get_origin(ann) is typing.Literal and info.is_required():
                tags.extend(str(a) for a in typing.get_args(ann))
    return tags


def type_at(loc: Iterable, root: Any) -> tuple[Any, Optional[Any]]:
    """The annotation at `loc` inside `root` (a model class), and the field info last crossed."""
    current, info = root, None
    for part in loc:
        options = _members(current)
        if len(options) > 1:
            chosen = [m for m in options if str(part) in _tag_of(m)]
            if chosen:
                current = chosen[0]
                continue
            models = [m for m in options if isinstance(m, type) and issubclass(m, BaseModel)]
            current = models[0] if len(models) == 1 else options[0]
        else:
            current = options[0]
        if isinstance(part, str) and (part.startswith(("literal[", "function-")) or part == "[key]"):
            continue
        origin = typing.get_origin(current)
        if isinstance(current, type) and issubclass(current, BaseModel):
            found = _field(current, str(part))
            if found is None:
                return None, info
            info, current = found, found.annotation
        elif origin is dict:
            current = typing.get_args(current)[1]
        elif origin in (list, set, frozenset):
            current = typing.get_args(current)[0]
        elif origin is tuple:
            args = typing.get_args(current)
            current = args[0] if args and isinstance(part, int) else None
        else:
            return None, info
    return current, info


def model_at(loc: Iterable, root: type[BaseModel]) -> Optional[type[BaseModel]]:
    current, _ = type_at(loc, root)
    models = [m for m in _members(current) if isinstance(m, type) and issubclass(m, BaseModel)]
    return models[0] if models else None


def allowed_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def discriminator_values(loc: Iterable, root: type[BaseModel]) -> tuple[Optional[str], list[str]]:
    current, _ = type_at(loc, root)
    current = _strip(current)
    values: list[str] = []
    key = None
    for member in _members(current):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, info in member.model_fields.items():
                ann = _strip(info.annotation)
                if typing.get_origin(ann) is typing.Literal and info.is_required():
                    key = key or name
                    if name == key:
                        values.extend(str(a) for a in typing.get_args(ann))
    return key, values


@functools.lru_cache(maxsize=1)
def key_locations() -> dict[str, list[str]]:
    """Every key of the spec language -> the places it may appear (`training.optimizer.adam`, ...)."""
    from polytask.spec.models import Spec

    found: dict[str, list[str]] = {}
    seen: set = set()

    def walk(tp, where: str) -> None:
        for member in _members(tp):
            origin = typing.get_origin(member)
            if isinstance(member, type) and issubclass(member, BaseModel):
                if (member, where) in seen or len(seen) > 2000:
                    continue
                seen.add((member, where))
                for name, info in member.model_fields.items():
                    key = info.alias or name
                    tag = _variant(member)
                    here = f"{where}{'.' if where else ''}{key}"
                    found.setdefault(key, [])
                    label = where or "the top level"
                    if tag:
                        label = f"{where} (with {tag})" if where else label
                    if label not in found[key]:
                        found[key].append(label)
                    walk(info.annotation, here)
            elif origin is dict:
                walk(typing.get_args(member)[1], f"{where}.<name>")
            elif origin in (list, tuple):
                for arg in typing.get_args(member):
                    if arg is not Ellipsis:
                        walk(arg, f"{where}[]")

    walk(Spec, "")
    return found


def _variant(model: type[BaseModel]) -> Optional[str]:
    for name, info in model.model_fields.items():
        ann = _strip(info.annotation)
        if typing.get_origin(ann) is typing.Literal and info.is_required() and len(typing.get_args(ann)) == 1:
            return f"{name}: {typing.get_args(ann)[0]}"
    return None


def _literals(text: str) -> list[str]:
    found = re.findall(r"'((?:[^'\\]|\\.)*)'", text or "")
    return found or [t.strip() for t in re.split(r",| or ", text or "") if t.strip()]


# --------------------------------------------------------------------------- translation


class Translator:
    """Turns the errors of one `ValidationError` into positioned diagnostics."""

    def __init__(self, model: type[BaseModel], data: Any, source_map: SourceMap, filename: str):
        self.model, self.data, self.source_map, self.filename = model, data, source_map, filename

    def _diag(self, code, message, path, prefer="value", hint=None) -> Diagnostic:
        position = self.source_map.position(path, prefer)
        return Diagnostic(code, message, file=self.filename, line=position.line, column=position.column,
                          hint=hint, path=dotted(path) or None)

    def _mapping_at(self, path: tuple) -> dict:
        """The user's mapping at `path` in the raw data ({} when it is not a mapping)."""
        node = self.data
        for part in path:
            try:
                node = node[part]
            except (KeyError, IndexError, TypeError):
                return {}
        return node if isinstance(node, dict) else {}

    def translate(self, errors: list[dict]) -> list[Diagnostic]:
        errors = _resolve_unions(errors, self.data)
        out, seen = [], set()
        if len(errors) > MAX_REPORTS:
            rest = len(errors) - MAX_REPORTS
            errors = errors[:MAX_REPORTS]
            last = self.one(errors[-1])
            out.append(Diagnostic("PT099", f"{rest:,} more schema problems not listed; fix these first",
                                  file=self.filename, line=last.line if last else 1,
                                  column=last.column if last else 1))
        for error in errors:
            diag = self.one(error)
            if diag is None:
                continue
            key = (diag.code, diag.line, diag.column, diag.message)
            if key not in seen:
                seen.add(key)
                out.append(diag)
        return out

    def one(self, error: dict) -> Optional[Diagnostic]:
        kind, loc, ctx = error["type"], tuple(error["loc"]), error.get("ctx") or {}
        path, complete = data_path(loc, self.data)
        where = dotted(path) or "the spec"
        value = error.get("input")

        if kind == "extra_forbidden":
            parent = model_at(loc[:-1], self.model)
            key = loc[-1]
            choices = allowed_keys(parent) if parent else []
            noun = getattr(parent, "noun", None) if parent else None
            found_key = bool(path) and path[-1] == key
            parent_where = dotted(path[:-1] if found_key else path) or "the spec"
            if parent is not None and not parent.model_fields and found_key:
                name = path[-2] if len(path) >= 2 and isinstance(path[-2], str) else "it"
                return self._diag("PT102", f"{parent_where} takes no parameters (got '{key}')", path, "key",
                                  hint=f"write `{name}` alone")
            if noun:
                message = f"unknown {noun} '{key}' in {parent_where}{did_you_mean(key, choices)}"
            elif parent_where == "the spec":
                message = f"unknown top-level key '{key}'{did_you_mean(key, choices)}"
            else:
                message = f"unknown key '{key}' in {parent_where}{did_you_mean(key, choices)}"
            hint = None
            if choices and not closest(key, choices):
                # Elsewhere only: the same place under another variant (mmoe's experts.count in a
                # cgc spec) would read "'count' belongs in structure.experts" at structure.experts.
                here = dotted([p for p in (path[:-1] if found_key else path) if not isinstance(p, int)])
                elsewhere = [w for w in key_locations().get(str(key), []) if w != here]
                hint = f"'{key}' belongs in {one_of(elsewhere, limit=4)}" if elsewhere else f"allowed here: {one_of(choices)}"
            return self._diag("PT102", message, path, "key", hint)

        if kind == "missing":
            if isinstance(loc[-1], int):
                return self._diag("PT103", f"{where} has too few values", path, "value",
                                  hint="ranges are written as two numbers: [low, high]")
            parent_where = dotted(path) or "the spec"
            _, info = type_at(loc, self.model)
            hint = f"`{loc[-1]}`: {info.description}" if info is not None and info.description else None
            return self._diag("PT101", f"missing required key '{loc[-1]}' in {parent_where}", path, "key", hint)

        if kind == "union_tag_not_found":
            key, values = discriminator_values(loc, self.model)
            key = key or ctx.get("discriminator", "").strip("'")
            given = self._mapping_at(path)
            typo = closest(key, [k for k in given if k != key]) if key else None
            if typo is not None:  # `sharnig: hard`: point at the misspelled key, not at a missing one
                return self._diag("PT102", f"unknown key '{typo}' in {where} (did you mean '{key}'?)",
                                  path + (typo,), "key",
                                  hint=f"set `{key}:` to one of: {one_of(values)}" if values else None)
            return self._diag("PT101", f"missing required key '{key}' in {where}", path, "key",
                              hint=f"set `{key}:` to one of: {one_of(values)}" if values else None)

        if kind == "union_tag_invalid":
            key = str(ctx.get("discriminator", "")).strip("'")
            tag = ctx.get("tag")
            choices = _literals(ctx.get("expected_tags", ""))
            target = path + (key,) if (path + (key,)) in self.source_map else path
            return self._diag("PT106", f"unknown {key} '{tag}' in {where}{did_you_mean(tag, choices)}",
                              target, "value", hint=f"{key} is one of: {one_of(choices)}")

        if kind == "literal_error":
            choices = _literals(ctx.get("expected", ""))
            if loc == ("polytask",) and isinstance(value, str) and value.strip() in choices:
                return self._diag("PT103", f"the format version is a number: write `polytask: {value.strip()}`, "
                                  f"not {shown(value)}", path, "value")
            if loc == ("polytask",):
                return self._diag("PT108", f"unsupported spec format version {shown(value)}; "
                                  f"this polytask reads version {one_of(choices)}", path, "value",
                                  hint="write `polytask: 1` (the first line of every spec)")
            return self._diag("PT105", f"{where}: {shown(value)} is not allowed{did_you_mean(value, choices)}",
                              path, "value", hint=f"choose one of: {one_of(choices)}")

        if kind == "string_pattern_mismatch":
            is_key = loc and loc[-1] == "[key]"
            pattern = ctx.get("pattern", "")
            if pattern == _IDENTIFIER:
                section = path[0] if path else None
                fixed = ascii_name(value, fallback={"tasks": "task", "datasets": "data"}.get(section, "name"))
                what = "name" if is_key else "reference"
                where = (dotted(path[:-1]) or "the spec") if is_key else where
                return self._diag("PT104", f"{shown(value)} in {where} is not a valid {what}: names use letters, "
                                  "digits and underscores and do not start with a digit", path,
                                  "key" if is_key else "value", hint=f"for example '{fixed}'")
            if loc[-1:] == ("callable",):
                return self._diag("PT104", f"{where}: {shown(value)} is not a `module:attribute` reference",
                                  path, "value", hint="for example `callable: my_package.data:load_arrays`")
            if loc == ("name",):
                return self._diag("PT104", f"{where}: {shown(value)} is not a valid run name: it uses letters, "
                                  "digits and `_ . -` and starts with a letter or digit", path, "value",
                                  hint=f"for example '{ascii_name(value, 'A-Za-z0-9_.-', '-', 'run', 128)}'")
            return self._diag("PT104", f"{where}: {shown(value)} is not allowed (it must match {pattern})",
                              path, "key" if is_key else "value")

        if kind in _RANGE:
            bound = _RANGE[kind].format(**{k: shown(v) for k, v in ctx.items()})
            hint = None
            if kind == "less_than_equal" and ctx.get("le") == 1 and isinstance(value, (int, float)) and value > 1:
                hint = f"fractions are written between 0 and 1: {value / 100:g}, not {shown(value)}"
            return self._diag("PT104", f"{where} must be {bound} (got {shown(value)})", path, "value", hint)

        if kind == "finite_number":
            return self._diag("PT104", f"{where} must be a finite number (got {shown(value)})", path, "value")

        if kind in ("too_short", "too_long") and "actual_length" in ctx:
            bound = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
            items = f"{bound} item{'s' if bound != 1 else ''}"
            return self._diag("PT104", f"{where} needs {'at least' if kind == 'too_short' else 'at most'} {items}, "
                              f"got {ctx['actual_length']}", path, "value")

        if kind in ("too_short", "too_long", "string_too_short", "string_too_long"):
            msg = error["msg"].replace("Value should", "should").replace("String should", "should")
            return self._diag("PT104", f"{where} {msg[0].lower() + msg[1:]}", path, "value")

        if kind in ("value_error", "assertion_error"):
            msg = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
            return self._diag("PT107", f"{where}: {msg}", path, "value")

        if kind == "polytask_union_type":
            return self._diag("PT103", f"{where} should be {ctx['expected']}, got {shown(value)}", path, "value")

        if kind in _TYPE_WORDS:
            return self._diag("PT103", f"{where} should be {_TYPE_WORDS[kind]}, got {shown(value)}", path, "value",
                              _type_hint(kind, value))

        return self._diag("PT103" if kind.endswith(("_type", "_parsing")) else "PT104",
                          f"{where}: {error['msg']} (got {shown(value)})", path, "value")


def _type_hint(kind: str, value: Any) -> Optional[str]:
    if kind in ("list_type", "tuple_type") and isinstance(value, dict):
        return "write a list: one `- ` item per line, or [a, b] on one line"
    if kind == "list_type" and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return f"write a list, even of one item: [{value}]"
    if kind == "tuple_type" and isinstance(value, (int, float)):
        return f"write two values, e.g. [{value}, {value}]"
    if kind in ("dict_type", "model_type", "model_attributes_type") and isinstance(value, list):
        return "write a mapping (`key: value` lines), not a list (no `- `)"
    if kind in ("int_from_float",):
        return "write a whole number such as 3"
    if kind == "string_type" and isinstance(value, bool):
        return "YAML reads yes/no/on/off/true/false as booleans; quote the value if you meant text"
    if kind == "string_type" and isinstance(value, (int, float)):
        return f"quote it if you meant text: '{value}'"
    return None


def _is_union_tag(part: Any) -> bool:
    if not isinstance(part, str):
        return False
    return "[" in part or part[:1].isupper() or part in ("int", "str", "float", "bool", "none", "bytes")


_TYPE_MISMATCH = set(_TYPE_WORDS) - {"literal_error"}


def _is_model_tag(tag: str) -> bool:
    """A union branch that is a model: `Loss`, or `function-after[_exactly_one(), Loss]` when it has validators."""
    return tag[:1].isupper() or tag.startswith(("function-after[", "function-before[", "function-wrap["))


def _resolve_unions(errors: list[dict], data: Any) -> list[dict]:
    """Keep, for a value that failed every branch of a plain union, only the branch it meant.

    `sampling: unifrm` fails both `Literal['uniform', 'proportional']` and the
    `{temperature: ...}` model; the user meant the literal, so the model's errors go.
    """
    points: dict[tuple, dict[str, list[dict]]] = {}
    for error in errors:
        loc = tuple(error["loc"])
        for i, part in enumerate(loc):
            if _is_union_tag(part):
                points.setdefault(loc[:i], {}).setdefault(part, []).append(error)
                break
    drop: set[int] = set()
    extra: list[dict] = []
    for prefix, branches in points.items():
        if len(branches) < 2:
            continue
        path, complete = data_path(prefix, data)
        value = value_at(data, path) if complete else None
        if isinstance(value, dict):
            keep = {t for t in branches if _is_model_tag(t) or t.startswith("dict[")}
        elif isinstance(value, str):
            keep = {t for t in branches if t.startswith(("literal[", "str"))}
        else:
            keep = set()
        # A branch whose only errors are "this is not a <type>" at the union itself is not what the
        # user meant; one with errors inside the value (`{mse: 5}`: mse's params) is.
        keep = {t for t in keep if not all(e["type"] in _TYPE_MISMATCH and len(e["loc"]) <= len(prefix) + 1
                                           for e in branches[t])}
        for tag, errs in branches.items():
            if tag not in keep:
                drop.update(id(e) for e in errs)
        if not keep:
            expected = []
            for tag, errs in branches.items():
                if tag.startswith("literal["):
                    expected.append(one_of(_literals((errs[0].get("ctx") or {}).get("expected", ""))))
                elif _is_model_tag(tag):
                    expected.append("a mapping")
                else:
                    expected.append(tag)
            first = next(iter(branches.values()))[0]
            extra.append({"type": "polytask_union_type", "loc": prefix, "input": first.get("input"),
                          "ctx": {"expected": " or ".join(dict.fromkeys(expected))}, "msg": ""})
    return [e for e in errors if id(e) not in drop] + extra


def validate(model: type[BaseModel], data: Any, source_map: SourceMap, filename: str):
    """Validate `data` as `model`: (instance or None, diagnostics)."""
    try:
        return model.model_validate(data), []
    except pydantic.ValidationError as exc:
        translator = Translator(model, data, source_map, filename)
        return None, translator.translate(exc.errors(include_url=False))
