"""`source: sklearn`: the small data sets that ship inside scikit-learn (no download).

Columns: `x` (the feature matrix, float32, the default input) and `target`. Classification
sets (digits, iris, wine, breast_cancer) have an int64 categorical `target` and
`class_names`; diabetes has a float32 `target`; linnerud has a (3,) `target` plus one
column per physiological target: `Weight`, `Waist`, `Pulse`. digits also has `image`
(8, 8, 1), the same pixels as `x` as an image. Values are as scikit-learn ships them
(digits pixels are 0..16), not rescaled.
"""
from __future__ import annotations

from pydantic import Field

from typing import Literal


from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES

# Shapes and classes known without importing scikit-learn (for `polytask check` and
# `polytask plan`); tests/test_data_sklearn.py checks them against scikit-learn's data.
META = {
    "digits": {"features": 64, "classes": 10, "rows": 1797, "image": (8, 8, 1)},
    "iris": {"features": 4, "classes": 3, "rows": 150},
    "wine": {"features": 13, "classes": 3, "rows": 178},
    "breast_cancer": {"features": 30, "classes": 2, "rows": 569},
    "diabetes": {"features": 10, "classes": None, "rows": 442},
    "linnerud": {"features": 3, "classes": None, "rows": 20, "targets": ["Weight", "Waist", "Pulse"]},
}


class SklearnDataset(DatasetBase):
    """A data set that ships inside scikit-learn (no download)."""

    source: Literal["sklearn"] = Field(description='`sklearn`')
    name: Literal[tuple(META)] = Field(description='Columns: `x` and `target` (linnerud also `Weight`, `Waist`, `Pulse`; digits also `image`).')


def columns(name: str) -> dict[str, Column]:
    """The columns of scikit-learn's data set `name`, without importing scikit-learn."""
    meta = META[name]
    out = {"x": Column((meta["features"],), dtype="float32", categorical=False)}
    if meta["classes"] is not None:
        out["target"] = Column((), dtype="int64", categorical=True, num_classes=meta["classes"])
    else:
        targets = meta.get("targets", [])
        out["target"] = Column((len(targets),) if targets else (), dtype="float32", categorical=False)
        for target_name in targets:
            out[target_name] = Column((), dtype="float32", categorical=False)
    if "image" in meta:
        out["image"] = Column(meta["image"], dtype="float32", categorical=False)
    return out


@SOURCES.register
class Sklearn(Source):
    """A data set that ships inside scikit-learn, by name (no download)."""

    name = "sklearn"
    Params = SklearnDataset
    default_input = "`x`"
    other_columns = "`target` (+ linnerud's `Weight`, `Waist`, `Pulse`; digits' `image`)"
    reads = "bundled with scikit-learn"

    def default_inputs(self, params) -> list[str]:
        return ["x"]

    def static_facts(self, params) -> Facts:
        return Facts(columns=columns(params.name), rows=META[params.name]["rows"])

    def load(self, dataset, context: SourceContext) -> Columns:
        import numpy as np

        from sklearn import datasets as sk_datasets

        bunch = getattr(sk_datasets, f"load_{dataset.name}")()
        meta = META[dataset.name]
        data = {"x": np.asarray(bunch.data, dtype=np.float32)}
        class_names = None
        if meta["classes"] is not None:
            data["target"] = np.asarray(bunch.target, dtype=np.int64)
            class_names = [str(n) for n in bunch.target_names]
        else:
            data["target"] = np.asarray(bunch.target, dtype=np.float32)
        for index, target_name in enumerate(meta.get("targets", [])):
            data[target_name] = data["target"][:, index].copy()
        if "image" in meta:
            data["image"] = np.asarray(bunch.images, dtype=np.float32)[..., None]
        return Columns(columns=data, class_names=class_names, feature_columns=["x"], info=columns(dataset.name))

    def describe(self, dataset, context: SourceContext) -> dict[str, Column]:
        return columns(dataset.name)
