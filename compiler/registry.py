"""A tiny registry for open sets (layers, losses, metrics, weighting transforms).

Each entry is one module in a package that decorates its class with `@registry.register(name)`;
`registry.get(name)` imports every module of the package on first use, so adding an entry
is adding one file and nothing else.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable, Generic, TypeVar

from polytask.errors import PolytaskError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> instance of a registered class, for one package of entry modules."""

    def __init__(self, what: str, package: str):
        self.what = what
        self.package = package
        self._entries: dict[str, T] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[type], type]:
        def decorate(cls: type) -> type:
            if name in self._entries and type(self._entries[name]) is not cls:
                raise ValueError(f"{self.what} {name!r} is already registered")
            instance = cls()
            instance.name = name
            self._entries[name] = instance
            return cls

        return decorate

    def _load(self) -> None:
        if self._loaded:
            return
        module = importlib.import_module(self.package)
        for info in pkgutil.iter_modules(module.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{self.package}.{info.name}")
        self._loaded = True

    def get(self, name: str) -> T:
        self._load()
        if name not in self._entries:
            raise PolytaskError(f"unknown {self.what} '{name}'", hint=f"available: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)
