"""Synthetic data generators, one module each, registered by `kind` with `@register_generator`.

A generator is a function `(spec, samples, rng_for) -> dict[column, array]` where
`rng_for(stream)` hands out independent NumPy generators seeded by the spec seed, one per
named stream: task parameters and inputs use different streams, so changing `samples`
never changes the tasks, and changing a knob such as `correlation` never changes `x`.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Callable

import numpy as np

GeneratorFn = Callable[..., dict[str, np.ndarray]]
_GENERATORS: dict[str, GeneratorFn] = {}
_SHAPES: dict[str, Callable] = {}


def register_generator(kind: str, shapes: Callable) -> Callable[[GeneratorFn], GeneratorFn]:
    """Register `fn` as generator `kind`; `shapes(spec)` returns {column: per-example shape} without generating."""

    def decorate(fn: GeneratorFn) -> GeneratorFn:
        _GENERATORS[kind] = fn
        _SHAPES[kind] = shapes
        return fn

    return decorate


def _import_all() -> None:
    for info in pkgutil.iter_modules(__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{__name__}.{info.name}")


def get_generator(kind: str) -> tuple[GeneratorFn, Callable]:
    if kind not in _GENERATORS:
        _import_all()
    if kind not in _GENERATORS:
        raise KeyError(kind)
    return _GENERATORS[kind], _SHAPES[kind]


def available_generators() -> list[str]:
    _import_all()
    return sorted(_GENERATORS)


def task_columns(count: int) -> list[str]:
    """Target column names of a generator with `count` tasks: task_0 ... task_{count-1}."""
    return [f"task_{i}" for i in range(count)]
