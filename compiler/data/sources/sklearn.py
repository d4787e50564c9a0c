"""`source: sklearn`: the small data sets that ship inside scikit-learn (no download).

Columns: `x` (the feature matrix, float32, the default input) and `target`. Classification
sets (digits, iris, wine, breast_cancer) have an int64 categorical `target` and
`class_names`; diabetes has a float32 `target`; linnerud has a (3,) `target` plus one
column per physiological target: `Weight`, `Waist`, `Pulse`. digits also has `image`
(8, 8, 1), the same pixels as `x` as an image. Values are as scikit-learn ships them
(digits pixels are 0..16), not rescaled.
"""
from __future__ import annotations

import numpy as np

from polytask.compiler.data.registry import Columns, DataSource, SourceContext, register_source
from polytask.compiler.data.table import ColumnInfo

# Shapes and classes known without importing scikit-learn (for `polytask plan`);
# tests/test_data_sklearn.py checks them against the loaded data.
_META = {
    "digits": {"features": 64, "classes": 10, "rows": 1797},
    "iris": {"features": 4, "classes": 3, "rows": 150},
    "wine": {"features": 13, "classes": 3, "rows": 178},
    "breast_cancer": {"features": 30, "classes": 2, "rows": 569},
    "diabetes": {"features": 10, "classes": None, "rows": 442},
    "linnerud": {"features": 3, "classes": None, "rows": 20, "targets": ["Weight", "Waist", "Pulse"]},
}


@register_source("sklearn")
class SklearnSource(DataSource):
    """Bundled scikit-learn data sets by name."""

    def load(self, dataset, context: SourceContext) -> Columns:
        from sklearn import datasets as sk_datasets

        bunch = getattr(sk_datasets, f"load_{dataset.name}")()
        meta = _META[dataset.name]
        columns = {"x": np.asarray(bunch.data, dtype=np.float32)}
        class_names = None
        if meta["classes"] is not None:
            columns["target"] = np.asarray(bunch.target, dtype=np.int64)
            class_names = [str(n) for n in bunch.target_names]
        else:
            columns["target"] = np.asarray(bunch.target, dtype=np.float32)
        for index, target_name in enumerate(meta.get("targets", [])):
            columns[target_name] = columns["target"][:, index].copy()
        if dataset.name == "digits":
            columns["image"] = np.asarray(bunch.images, dtype=np.float32)[..., None]
        return Columns(columns=columns, class_names=class_names, feature_columns=["x"], info=self._info(dataset.name))

    def default_features(self, dataset) -> list[str]:
        return ["x"]

    def describe(self, dataset, context: SourceContext) -> dict[str, ColumnInfo]:
        return self._info(dataset.name)

    @staticmethod
    def _info(name: str) -> dict[str, ColumnInfo]:
        meta = _META[name]
        info = {"x": ColumnInfo(shape=(meta["features"],), dtype="float32")}
        if meta["classes"] is not None:
            info["target"] = ColumnInfo(shape=(), dtype="int64", categorical=True, num_classes=meta["classes"])
        else:
            targets = meta.get("targets", [])
            info["target"] = ColumnInfo(shape=(len(targets),) if targets else (), dtype="float32")
            for target_name in targets:
                info[target_name] = ColumnInfo(shape=(), dtype="float32")
        if name == "digits":
            info["image"] = ColumnInfo(shape=(8, 8, 1), dtype="float32")
        return info
