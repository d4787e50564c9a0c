"""What a dataset provides, in one vocabulary for `polytask check` and the compiler.

`Column` describes one column per example: shape, dtype, whether it holds class labels and
how many. The data sources' cheap facts (`Source.facts`, read from headers and listings
by `polytask check`) and their loaders (`describe`, the `Table`'s `info`) both produce it,
and losses and metrics read it (`column.shape`, `.dtype`, `.categorical`, `.num_classes`,
`not_labels_because`) whichever side they run on. Fields may be None when not known.

`Facts` is what is known about one dataset before anything is loaded; `DatasetBase` is the
base of every source's params model (the `split:` all sources share). `input_columns` and
`input_shape` are the one rule for a task's input, used by the rules and by the planner.

Nothing here imports NumPy or TensorFlow.
"""
from __future__ import annotations

from pydantic import Field

from dataclasses import dataclass, field
from math import prod
from typing import Callable, Iterable, Optional

from polytask.spec.splits import Split
from polytask.spec.types import StrictModel

# Integer-valued, non-negative columns whose largest value is below this are treated as
# class labels (num_classes = max + 1). Anything else integer-valued is a number.
MAX_CLASSES = 1000

# In an int64 label column this value marks a missing label (masked out of the loss).
MISSING_LABEL = -1


@dataclass(frozen=True)
class Column:
    """What one column holds, per example.

    shape: per-example shape, `()` for a scalar (None: unknown).
    dtype: 'float32' | 'int64' | 'string' (None: unknown).
    categorical: the column holds class indices 0..num_classes-1 (None: unknown).
    num_classes: number of classes when categorical, else None.
    missing: rows whose value is missing (NaN in float32 columns, -1 in int64 label columns).
    class_counts: examples per class, when the source knows it cheaply (image folders).
    not_labels_because: why whole numbers are still not class labels ("negative values
    (down to -1)"); messages say this instead of "continuous values".
    first_missing: where the first missing value is ("table.csv:7:2"), when the source knows.
    distinct: how many different values a categorical column holds (None: unknown).
    """

    shape: Optional[tuple] = ()
    dtype: Optional[str] = None
    categorical: Optional[bool] = False
    num_classes: Optional[int] = None
    missing: int = 0
    class_counts: Optional[tuple] = None
    not_labels_because: Optional[str] = field(default=None, compare=False)
    first_missing: Optional[str] = field(default=None, compare=False)
    distinct: Optional[int] = field(default=None, compare=False)

    def to_dict(self) -> dict:
        out = {"shape": list(self.shape), "dtype": self.dtype, "categorical": self.categorical}
        if self.num_classes is not None:
            out["num_classes"] = self.num_classes
        if self.missing:
            out["missing"] = self.missing
        return out


UNKNOWN = Column(shape=None, categorical=None)


@dataclass
class Facts:
    """What is known about one dataset without loading it. `columns is None`: not known."""

    columns: Optional[dict[str, Column]] = None
    class_counts: Optional[list[int]] = None  # image folders: examples per class
    rows: Optional[int] = None
    notes: list[str] = field(default_factory=list)

    @property
    def known(self) -> bool:
        return self.columns is not None


class DatasetBase(StrictModel):
    """Base of every data source's params model (`datasets.<name>`)."""

    split: Split = Field(Split(), description='Row split (train/validation/test fractions), drawn once from the seed.')


def declared_features(dataset) -> Optional[list[str]]:
    """A dataset's own `features:` as a list (an npz's single array name too), or None."""
    declared = getattr(dataset, "features", None)
    if declared is None:
        return None
    return [declared] if isinstance(declared, str) else list(declared)


def targets_by_dataset(tasks) -> dict[str, set[str]]:
    """Dataset name -> the columns some task predicts from it (`tasks`: name -> spec Task)."""
    out: dict[str, set[str]] = {}
    for task in tasks.values():
        out.setdefault(task.dataset, set()).add(task.target)
    return out


def input_columns(dataset, features: Optional[list[str]], targets: Iterable[str],
                  columns: Optional[dict]) -> Optional[list[str]]:
    """The input columns of a task: its `features:`, else its source's default input (the
    dataset's `features:`, or `x`, `image`, ...), else every column that no task uses as a
    target and that is not text. None when that depends on columns that are not known.

    `Table.input_columns(None, targets)` gives the same answer on the loaded data.
    """
    if features is not None:
        return list(features)
    from polytask.spec.registry import SOURCES

    default = SOURCES.get(dataset.source).default_inputs(dataset)
    if default is not None:
        return list(default)
    if columns is None:
        return None
    targets = set(targets)
    return [c for c, column in columns.items() if c not in targets and column.dtype != "string"]


def input_shape(names: list[str], column: Callable[[str], Optional[Column]]) -> Optional[tuple]:
    """The input shape of these columns, as the compiler builds inputs (`Table.features`):
    one column of rank >= 2 keeps its shape, else each is flattened and they are joined.
    None when a column or its shape is not known."""
    shapes = []
    for name in names:
        described = column(name)
        if described is None or described.shape is None:
            return None
        shapes.append(tuple(described.shape))
    if len(shapes) == 1 and len(shapes[0]) >= 2:
        return shapes[0]
    return (sum(int(prod(s)) for s in shapes),)
