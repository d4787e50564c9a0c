"""One registry mechanism for every open set of the spec language, and plugins.

A *concept* is one named member of an open set: a layer kind, a loss, a metric, a loss
weighting. Each is described by one class in one module, a *descriptor*, that owns
everything about it: its name, its pydantic params model, its TensorFlow-free plan facts
(shapes, parameter counts, which targets it fits) and its TensorFlow builders, which
import TensorFlow only when called. Everything else is generated from the registries:

- the spec's choice types (`Literal` names and single-key mappings such as
  `{dense: {units: 64}}`) in `polytask.spec.models`, hence the JSON Schema, the
  did-you-mean candidates and the reference tables of docs/spec-language.md;
- the cross-field rules and the planner, which ask the descriptors, never a list of names.

Built-in descriptors live in the compiler's packages (`polytask.compiler.losses`, ...),
which this module imports *by name* when a registry is first used, the way pytest loads
its default plugins; the spec layer never imports the compiler statically. Other installed
packages add concepts through the entry-point group `polytask.plugins`: each entry point
names a module whose descriptors register themselves on import, exactly like the built-in
ones. Plugin modules must import without TensorFlow, so `polytask check` stays TF-free.

A plugin that fails to import, registers a name twice or collides with a built-in does not
stop anything: the problem is recorded (`plugin_problems()`), `polytask check` reports it
as a diagnostic naming the plugin and its distribution, and the first registration wins.
"""
from __future__ import annotations

import importlib
import importlib.metadata
import pkgutil
import sys
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Iterator, Optional, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, create_model

from polytask.errors import PolytaskError
from polytask.spec.suggest import did_you_mean, one_of
from polytask.spec.types import NoParams

PLUGIN_GROUP = "polytask.plugins"
HEAVY_MODULES = ("tensorflow", "keras")  # plugins must not import these at import time


@dataclass(frozen=True)
class Origin:
    """Where a descriptor came from: a built-in module, or a plugin of an installed distribution."""

    module: str
    plugin: Optional[str] = None  # the entry point's name
    distribution: Optional[str] = None  # "polytask-focal 0.1.0"

    @property
    def builtin(self) -> bool:
        return self.plugin is None

    def describe(self) -> str:
        if self.builtin:
            return "built in"
        return f"plugin '{self.plugin}' (distribution {self.distribution or 'unknown'})"


@dataclass(frozen=True)
class PluginProblem:
    """A plugin that could not be used as it is, in words a user can act on."""

    plugin: str
    distribution: str
    message: str
    hint: str


class Concept:
    """Base of every descriptor. Subclasses set `name` and, if they take parameters, `Params`."""

    name: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    origin: Origin

    @classmethod
    def summary(cls) -> str:
        """The first paragraph of the descriptor's docstring, on one line (for schema and docs)."""
        doc = (cls.__doc__ or "").strip().split("\n\n")[0]
        return " ".join(doc.split())

    def default_params(self) -> BaseModel:
        return self.Params()


C = TypeVar("C", bound=Concept)


class Registry(Generic[C]):
    """Name -> descriptor for one kind of concept (`layer`, `loss`, ...)."""

    def __init__(self, kind: str, noun: str, plural: str, builtin_package: str, tag: Optional[str] = None,
                 required_fields: tuple[str, ...] = ()):
        self.kind = kind
        self.required_fields = required_fields  # every Params has these (an optimizer's learning_rate)
        self.tag = tag  # concepts written as a mapping with this key naming them (`source: csv`)
        self.noun = noun  # in messages: "unknown layer kind 'x'"
        self.plural = plural
        self.builtin_package = builtin_package
        self._entries: dict[str, C] = {}
        self._sorted_names: Optional[list[str]] = None  # names() is asked for by every check rule
        REGISTRIES[kind] = self

    # ------------------------------------------------------------------ registration

    def register(self, cls: type[C]) -> type[C]:
        """Class decorator: register one descriptor under `cls.name`."""
        name = cls.name
        origin = _current_origin(cls)
        problem = self._problem(cls)
        if problem is not None:
            message, hint = problem
            if origin.builtin:
                raise TypeError(f"{cls.__qualname__}: {message}")
            _problems.append(PluginProblem(
                origin.plugin, origin.distribution or "unknown",
                f"plugin '{origin.plugin}' (distribution {origin.distribution}) registers {self.noun} "
                f"{name!r} ({cls.__qualname__}), but {message}; it is skipped", hint))
            return cls
        existing = self._entries.get(name)
        if existing is not None:
            if type(existing).__qualname__ == cls.__qualname__ and existing.origin == origin:
                return cls  # the same module imported twice
            if origin.builtin:
                raise TypeError(f"built-in {self.noun} '{name}' is defined twice "
                                f"({existing.origin.module} and {origin.module})")
            _problems.append(PluginProblem(
                origin.plugin, origin.distribution or "unknown",
                f"plugin '{origin.plugin}' (distribution {origin.distribution}) registers {self.noun} '{name}', "
                f"which is {'built in' if existing.origin.builtin else 'registered by ' + existing.origin.describe()}"
                "; that one is kept",
                "rename the plugin's concept, or uninstall one of the two distributions"))
            return cls
        instance = cls()
        instance.origin = origin
        self._entries[name] = instance
        self._sorted_names = None
        return cls

    def _problem(self, cls) -> Optional[tuple[str, str]]:
        """(what is wrong, how to fix it) when `cls` cannot be registered here."""
        name = cls.name
        if not isinstance(name, str) or not name.isidentifier():
            return ("its `name` is not an identifier (letters, digits, _)",
                    f"name it like the built-ins, e.g. {self.names()[0] if self._entries else 'my_concept'!r}")
        if not (isinstance(cls.Params, type) and issubclass(cls.Params, BaseModel)):
            return "its Params is not a pydantic model", "derive Params from polytask.spec.types.StrictModel"
        if self.tag is not None:
            field_info = cls.Params.model_fields.get(self.tag)
            if field_info is None or typing.get_args(field_info.annotation) != (name,):
                return (f"its Params lacks the field `{self.tag}: Literal[{name!r}]`",
                        f"add `{self.tag}: Literal[{name!r}]` to {cls.Params.__name__}")
        missing = [f for f in self.required_fields if f not in cls.Params.model_fields]
        if missing:
            return (f"its Params lacks {', '.join(missing)}",
                    f"every {self.noun} has {', '.join(missing)}; add it to {cls.Params.__name__}")
        return None

    # ------------------------------------------------------------------ lookup

    def get(self, name: str) -> C:
        if not _loaded:
            load_all()
        if name not in self._entries:
            names = self.names()
            raise PolytaskError(f"unknown {self.noun} '{name}'{did_you_mean(name, names)}",
                                hint=f"available: {one_of(names, limit=40)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        if not _loaded:
            load_all()
        return isinstance(name, str) and name in self._entries

    def names(self) -> list[str]:
        """Built-in names first (alphabetical), then plugins' (alphabetical)."""
        load_all()
        if self._sorted_names is None:
            self._sorted_names = sorted(self._entries, key=lambda n: (not self._entries[n].origin.builtin, n))
        return list(self._sorted_names)

    def items(self) -> Iterator[tuple[str, C]]:
        load_all()
        if self._sorted_names is None:
            self.names()
        for name in self._sorted_names:
            yield name, self._entries[name]

    def where(self, predicate) -> list[str]:
        """Names of the descriptors for which `predicate(descriptor)` is true."""
        return [name for name, d in self.items() if predicate(d)]

    # ------------------------------------------------------------------ generated spec types

    def literal(self) -> Any:
        """`Literal[name, ...]` of every registered name."""
        return typing.Literal[tuple(self.names())]

    def single_key_model(self, model_name: str, base: type[BaseModel]) -> type[BaseModel]:
        """A model with one optional field per name, holding that concept's params (`{adam: {...}}`).

        `base` supplies the shorthand and the exactly-one check (see `polytask.spec.models.OneOf`).
        """
        fields = {
            name: (Optional[_complete(d.Params)], Field(None, description=d.summary() or None))
            for name, d in self.items()
        }
        model = create_model(model_name, __base__=base, __doc__=base.__doc__, **fields)
        model.registry = self
        return model

    def tagged_union(self, default: Optional[str] = None) -> Any:
        """`Annotated[Union[Params, ...], Field(discriminator=tag)]` of every registered params model.

        For concepts written as a mapping with a tag key (`source: csv`, `sharing: hard`):
        each descriptor's `Params` declares `<tag>: Literal["<name>"]` (checked at registration).
        """
        members = tuple(_complete(d.Params) for _, d in self.items())
        if len(members) == 1:
            return members[0]
        union = typing.Annotated[typing.Union[members], Field(discriminator=self.tag)]
        if default is None:
            return union
        tag = self.tag

        def default_tag(value: Any) -> Any:  # `schedule: {warmup_steps: 100}` means kind: <default>
            return {tag: default, **value} if isinstance(value, dict) and tag not in value else value

        return typing.Annotated[union, BeforeValidator(default_tag)]


# Names under which composite params models refer to generated types (imported under
# `if TYPE_CHECKING:`; `_complete` supplies the real ones once every registry is loaded).
AlgorithmName = str  # the Literal of registered meta-learning algorithm names
GeneratorChoice = Any  # the tagged union of registered generator params


def _complete(params: type[BaseModel]) -> type[BaseModel]:
    """Resolve a params model's references to generated spec types (`LayerList`).

    Descriptors of composite concepts (a sharing pattern holds layer lists and names an
    algorithm; the synthetic source holds a generator) name those types under
    `if TYPE_CHECKING:`, since the types are generated from registries that are still
    loading (plugins included) when the descriptor module is imported; the model is
    completed here, once every registry is loaded and the spec models are being built.
    """
    if not getattr(params, "__pydantic_complete__", True):
        from polytask.spec import layers

        params.model_rebuild(_types_namespace={"LayerList": layers.LayerList, "Layer": layers.Layer,
                                               "AlgorithmName": ALGORITHMS.literal(),
                                               "GeneratorChoice": GENERATORS.tagged_union()})
    return params


REGISTRIES: dict[str, Registry] = {}

SHARING: Registry = Registry("sharing", "sharing pattern", "sharing patterns", "polytask.compiler.sharing", tag="sharing")
OPTIMIZERS: Registry = Registry("optimizer", "optimizer", "optimizers", "polytask.compiler.optimizers",
                                required_fields=("learning_rate",))
SCHEDULES: Registry = Registry("schedule", "schedule kind", "schedules", "polytask.compiler.schedules", tag="kind")
FAMILIES: Registry = Registry("family", "task family", "task families", "polytask.compiler.meta.families", tag="source")
ALGORITHMS: Registry = Registry("algorithm", "meta-learning algorithm", "meta-learning algorithms",
                                "polytask.compiler.meta.algorithms")

LAYERS: Registry = Registry("layer", "layer kind", "layer kinds", "polytask.compiler.layers")
LOSSES: Registry = Registry("loss", "loss", "losses", "polytask.compiler.losses")
METRICS: Registry = Registry("metric", "metric", "metrics", "polytask.compiler.metrics")
WEIGHTINGS: Registry = Registry("weighting", "weighting", "weightings", "polytask.compiler.weighting")
SOURCES = Registry("source", "data source", "data sources", "polytask.compiler.data.sources", tag="source")
GENERATORS = Registry("generator", "generator kind", "generator kinds", "polytask.compiler.data.generators", tag="kind")


# --------------------------------------------------------------------------- loading

_loaded = False
_loading: Optional[Origin] = None
_problems: list[PluginProblem] = []


def _current_origin(cls: type) -> Origin:
    if _loading is not None:
        return Origin(cls.__module__, _loading.plugin, _loading.distribution)
    return Origin(cls.__module__)


def _import_builtins(registry: Registry) -> None:
    package = importlib.import_module(registry.builtin_package)
    for info in pkgutil.iter_modules(package.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{registry.builtin_package}.{info.name}")


def _distribution(entry_point) -> str:
    dist = getattr(entry_point, "dist", None)
    if dist is None:
        return "unknown"
    return f"{dist.metadata['Name']} {dist.version}"


def _import_plugins() -> None:
    global _loading
    try:
        entry_points = importlib.metadata.entry_points(group=PLUGIN_GROUP)
    except Exception as exc:  # a broken metadata directory must not break `check`
        _problems.append(PluginProblem("?", "?", f"installed plugins cannot be listed: {exc}",
                                       "repair or reinstall the broken distribution"))
        return
    seen: set[str] = set()
    for entry_point in sorted(entry_points, key=lambda e: (e.name, e.value)):
        distribution = _distribution(entry_point)
        if entry_point.name in seen:
            _problems.append(PluginProblem(
                entry_point.name, distribution,
                f"plugin name '{entry_point.name}' is used by two installed distributions; "
                f"the one from {distribution} is skipped", "uninstall one of them"))
            continue
        seen.add(entry_point.name)
        _loading = Origin(entry_point.value, entry_point.name, distribution)
        heavy_before = {m for m in HEAVY_MODULES if m in sys.modules}
        try:
            entry_point.load()
            heavy = sorted(m for m in HEAVY_MODULES if m in sys.modules and m not in heavy_before)
            if heavy:
                _problems.append(PluginProblem(
                    entry_point.name, distribution,
                    f"plugin '{entry_point.name}' (distribution {distribution}) imports {' and '.join(heavy)} when "
                    "it is imported, so `polytask check` and `schema` load it too (seconds, and log lines)",
                    f"in {entry_point.value}, import {heavy[0]} inside the methods that build models"))
        except (Exception, SystemExit) as exc:
            _problems.append(PluginProblem(
                entry_point.name, distribution,
                f"plugin '{entry_point.name}' (distribution {distribution}) failed to import "
                f"{entry_point.value}: {type(exc).__name__}: {exc}; its concepts are not available",
                f"fix or reinstall {distribution.split(' ')[0]}, or uninstall it"))
        finally:
            _loading = None


def load_all() -> None:
    """Import every built-in descriptor module, then every plugin (once per process).

    Built-ins come first so that a plugin reusing a built-in name is reported, whatever
    the order in which registries are first used.
    """
    global _loaded
    if _loaded:
        return
    _loaded = True
    for registry in list(REGISTRIES.values()):
        _import_builtins(registry)
    _import_plugins()


def plugin_problems() -> list[PluginProblem]:
    load_all()
    return list(_problems)
