"""The JSON Schema of the spec language, for editors (yaml-language-server) and other tools.

Generated from the pydantic models, then adjusted where the YAML accepts shorthands that
pydantic's generator cannot see (they live in `mode="before"` validators):
- a layer may be a bare name (`- flatten`) and `activation` a bare function name;
- a weighting may be a bare name (`weighting: equal`) and `training.weighting` a single item;
- an optimizer may be a bare name (`optimizer: adam`, default parameters);
- layers, optimizers and weightings are single-key mappings (min/max one property).

Use it in a spec with the first line `# yaml-language-server: $schema=<path or URL>`.
"""
from __future__ import annotations

import copy
import functools
import json
import typing

from polytask.spec.layers import Layer
from polytask.spec.models import SPEC_VERSION, Optimizer, Spec, Weighting
from polytask.spec.registry import LAYERS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID = f"urn:polytask:spec:{SPEC_VERSION}"  # an identifier, not a download location


def _required_params(model) -> bool:
    annotation = typing.get_args(model)[0] if typing.get_args(model) else model
    return any(info.is_required() for info in annotation.model_fields.values())


@functools.lru_cache(maxsize=1)
def _schema() -> dict:
    schema = Spec.model_json_schema(by_alias=True)
    defs = schema["$defs"]

    layer = defs["Layer"]
    layer["minProperties"] = 1
    layer["maxProperties"] = 1
    bare = sorted(
        name for name, info in Layer.model_fields.items() if not _required_params(info.annotation)
    )
    for kind, descriptor in LAYERS.items():
        if descriptor.shorthand:
            annotation = descriptor.Params.model_fields[descriptor.shorthand].annotation
            choices = list(typing.get_args(annotation)) if typing.get_origin(annotation) is typing.Literal else None
            shorthand = {"enum": choices} if choices else {"type": "string"}
            layer["properties"][kind]["anyOf"].insert(
                0, {**shorthand, "description": f"Shorthand for {{{descriptor.shorthand}: VALUE}}."})
    defs["Layer"] = {
        "description": layer.get("description", ""),
        "anyOf": [{"enum": bare, "description": "A layer without parameters, by name."}, layer],
    }

    _name_or_single_key(defs, "Weighting", Weighting, "A weighting with default parameters.")
    training_weighting = defs["Training"]["properties"]["weighting"]
    defs["Training"]["properties"]["weighting"] = {
        "description": "One weighting, or a list applied in order.",
        "anyOf": [{"$ref": "#/$defs/Weighting"}, training_weighting],
    }
    _name_or_single_key(defs, "Optimizer", Optimizer, "An optimizer with default parameters.")
    defs["Loss"]["minProperties"] = 1
    defs["Loss"]["maxProperties"] = 1

    schema["patternProperties"] = {"^x-": {"description": "Free-form; ignored (a place for YAML anchors)."}}

    out = {"$schema": SCHEMA_DIALECT, "$id": SCHEMA_ID}
    out.update(schema)
    out["title"] = f"polytask spec (format {SPEC_VERSION})"
    return out


def json_schema() -> dict:
    """The JSON Schema (draft 2020-12) of a polytask spec, as a dict (a fresh copy)."""
    return copy.deepcopy(_schema())


def json_schema_text() -> str:
    return json.dumps(_schema(), indent=2, sort_keys=False) + "\n"


def _name_or_single_key(defs: dict, name: str, model, by_name: str) -> None:
    """A OneOf node accepts a bare name (`adam`) or a single-key mapping (`{adam: {...}}`)."""
    mapping = defs[name]
    mapping["minProperties"] = 1
    mapping["maxProperties"] = 1
    defs[name] = {
        "description": mapping.get("description", ""),
        "anyOf": [{"enum": list(model.model_fields), "description": by_name}, mapping],
    }
