"""What a dataset provides, as far as it can be known without loading it.

`Facts` describe a dataset's columns (per-example shape, class labels or numbers, number of
classes) so the cross-field rules can tell, before anything runs, that `cross_entropy` on a
continuous target or a hard-sharing trunk over two input shapes cannot work.

Bundled and generated data (scikit-learn sets, synthetic generators) and declared schemas
(tfrecord) are known statically, here. Files (csv, npz, image folders) are known only after
the cheap data checks in `polytask.spec.data_checks` have read their headers; with
`--no-data` those facts stay unknown and the rules that need them stay silent.

These facts mirror the data sources in `polytask.compiler.data` (column names `x`,
`target`, `task_0...`, `image`, `label`); tests/test_spec_catalog.py keeps them in step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional


@dataclass(frozen=True)
class Column:
    """One column: per-example shape (None: unknown), class labels or numbers (None: unknown)."""

    shape: Optional[tuple] = ()
    categorical: Optional[bool] = None
    num_classes: Optional[int] = None
    dtype: Optional[str] = None
    # Why a column of whole numbers is still not class labels ("negative values (down to -1)");
    # messages say this instead of "continuous values".
    not_labels_because: Optional[str] = field(default=None, compare=False)


@dataclass
class Facts:
    """What is known about one dataset. `columns is None` means: not known (no data checks)."""

    columns: Optional[dict[str, Column]] = None
    default_features: Optional[list[str]] = None  # None: every column no task uses as a target
    class_counts: Optional[list[int]] = None  # image folders: examples per class
    rows: Optional[int] = None
    notes: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.columns is not None


# Mirrors polytask.compiler.data.sources.sklearn (checked by tests/test_spec_catalog.py).
SKLEARN = {
    "digits": {"features": 64, "classes": 10, "rows": 1797, "image": (8, 8, 1)},
    "iris": {"features": 4, "classes": 3, "rows": 150},
    "wine": {"features": 13, "classes": 3, "rows": 178},
    "breast_cancer": {"features": 30, "classes": 2, "rows": 569},
    "diabetes": {"features": 10, "classes": None, "rows": 442},
    "linnerud": {"features": 3, "classes": None, "rows": 20, "targets": ["Weight", "Waist", "Pulse"]},
}


def _sklearn(dataset) -> Facts:
    meta = SKLEARN[dataset.name]
    columns = {"x": Column((meta["features"],), categorical=False, dtype="float32")}
    if meta["classes"] is not None:
        columns["target"] = Column((), categorical=True, num_classes=meta["classes"], dtype="int64")
    else:
        targets = meta.get("targets", [])
        columns["target"] = Column((len(targets),) if targets else (), categorical=False, dtype="float32")
        for name in targets:
            columns[name] = Column((), categorical=False, dtype="float32")
    if "image" in meta:
        columns["image"] = Column(meta["image"], categorical=False, dtype="float32")
    return Facts(columns=columns, default_features=["x"], rows=meta["rows"])


def _synthetic(dataset) -> Facts:
    generator = dataset.generator
    tasks = [f"task_{i}" for i in range(generator.tasks)]
    if generator.kind == "sinusoid":
        x, y = (1,), (1,)
    elif generator.kind == "gradnorm_toy":
        x, y = (generator.input_dim,), (generator.output_dim,)
    elif generator.kind == "mmoe":
        x, y = (generator.input_dim,), (1,)
    else:  # a generator this version does not know: shapes unknown
        return Facts()
    columns = {"x": Column(x, categorical=False, dtype="float32")}
    columns.update({name: Column(y, categorical=False, dtype="float32") for name in tasks})
    return Facts(columns=columns, default_features=["x"], rows=dataset.samples)


def _tfrecord(dataset) -> Facts:
    columns = {}
    for name, feature in dataset.schema_.items():
        categorical = {"int64": None, "string": None, "float32": False}[feature.dtype]
        columns[name] = Column(tuple(feature.shape), categorical=categorical, dtype=feature.dtype)
    return Facts(columns=columns, default_features=list(dataset.features))


def static_facts(dataset) -> Facts:
    """Facts known from the spec alone (no file is read)."""
    if dataset.source == "sklearn":
        return _sklearn(dataset)
    if dataset.source == "synthetic":
        return _synthetic(dataset)
    if dataset.source == "tfrecord":
        return _tfrecord(dataset)
    if dataset.source == "npz":
        return Facts(default_features=[dataset.features])
    if dataset.source == "image_folder":
        return Facts(default_features=["image"])
    return Facts()


def image_shape(dataset) -> tuple:
    height, width = dataset.image_size
    return (height, width, 1 if dataset.grayscale else 3)
