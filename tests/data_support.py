"""Helpers for the data-layer tests: build a LoadedSpec around one dataset declaration."""
from __future__ import annotations

from pathlib import Path

from polytask.compiler.data import describe_table, load_table
from polytask.spec.loader import LoadedSpec
from polytask.spec.models import Spec


def loaded_spec(folder: Path, datasets: dict, seed: int = 0) -> LoadedSpec:
    spec = Spec.model_validate({"polytask": 1, "name": "t", "seed": seed, "datasets": datasets})
    return LoadedSpec(spec=spec, path=Path(folder) / "spec.yaml")


def load(folder: Path, dataset: dict, *, seed: int = 0, name: str = "d", **kwargs):
    loaded = loaded_spec(folder, {name: dataset}, seed=seed)
    return load_table(name, loaded.spec.datasets[name], loaded, **kwargs)


def describe(folder: Path, dataset: dict, *, name: str = "d", **kwargs):
    loaded = loaded_spec(folder, {name: dataset})
    return describe_table(name, loaded.spec.datasets[name], loaded, **kwargs)
