"""The in-memory form every data source produces: named columns plus seeded splits.

A `Table` is what the compiler builds tf.data pipelines and episode samplers from. Columns
are NumPy arrays with one row per example; `info` says each column's per-example shape,
dtype and whether it holds class labels. Splits are row indices, drawn once from the seed.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterable, Optional


from polytask.errors import DataError
from polytask.spec.facts import MAX_CLASSES, MISSING_LABEL, Column
from polytask.spec.splits import split_sizes

if TYPE_CHECKING:
    import numpy as np

SPLIT_NAMES = ("train", "validation", "test")

# One column-description type for the spec's checks and the compiler (`polytask.spec.facts`);
# `ColumnInfo` is its historical name here.
ColumnInfo = Column


def infer_column_info(values: np.ndarray) -> Column:
    """Describe an array already normalised by `normalize_column` (float32, int64 or strings)."""
    import numpy as np

    shape = tuple(int(d) for d in values.shape[1:])
    if values.dtype.kind in "USO":
        return Column(shape=shape, dtype="string")
    if values.dtype.kind in "iub":
        if values.size == 0:
            return Column(shape=shape, dtype="int64")
        missing = int(np.count_nonzero(values == MISSING_LABEL)) if values.ndim == 1 else 0
        present = values[values != MISSING_LABEL] if values.ndim == 1 else values
        top = int(present.max()) if present.size else 0
        categorical = shape == () and (present.size == 0 or int(present.min()) >= 0) and top < MAX_CLASSES
        return Column(
            shape=shape,
            dtype="int64",
            categorical=categorical,
            num_classes=(top + 1) if categorical else None,
            missing=missing,
        )
    missing = int(np.count_nonzero(np.isnan(values).reshape(len(values), -1).any(axis=1))) if len(values) else 0
    return Column(shape=shape, dtype="float32", missing=missing)


def normalize_column(values: np.ndarray) -> np.ndarray:
    """Bring an array to the table's dtypes: labels int64, numbers float32, text str.

    Integer arrays stay int64 only when they look like class labels (scalar per example,
    values in -1..MAX_CLASSES-1, where -1 marks a missing label); other integers become float32.
    An array of only -1 and 1 is read as +-1 numbers, not as "class 1 or missing".
    Float arrays whose values are all integers are *not* turned into labels here: a float
    file format says "number" on purpose. (The csv source, which has no dtypes, decides itself.)
    """
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind == "b":
        return values.astype(np.int64)
    if values.dtype.kind in "iu":
        if values.ndim == 1 and (values.size == 0 or (values.min() >= MISSING_LABEL and values.max() < MAX_CLASSES)):
            if values.size and values.min() == -1 and set(np.unique(values).tolist()) == {-1, 1}:
                return values.astype(np.float32)  # +-1 targets, not "1 or missing"
            return values.astype(np.int64, copy=False)
        return values.astype(np.float32)
    if values.dtype.kind == "f":
        return values.astype(np.float32, copy=False)
    if values.dtype.kind in "US":
        return values
    if values.dtype.kind == "O":
        return np.asarray([v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v) for v in values.ravel()]).reshape(values.shape)
    raise TypeError(f"unsupported array dtype {values.dtype}")


def labels_or_numbers(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """The rule for tables whose files do not say which columns hold classes (csv, parquet).

    `values` are float64 with `missing` marking empty cells. A column whose present values
    are all whole numbers in 0..MAX_CLASSES-1 becomes int64 class labels with -1 where a
    cell is missing; any other column becomes float32 with NaN where a cell is missing.
    """
    import numpy as np

    known = values[~missing]
    if known.size and bool(np.all(known == np.round(known))) and known.min() >= 0 and known.max() < MAX_CLASSES:
        labels = np.full(len(values), MISSING_LABEL, dtype=np.int64)
        labels[~missing] = known.astype(np.int64)
        return labels
    out = values.astype(np.float32)
    out[missing] = np.nan
    return out


def number_column_facts(integral: bool, low: int, high: int, shape: tuple = (), missing: int = 0,
                        first_missing: Optional[str] = None, distinct: Optional[int] = None) -> Column:
    """What `polytask check` knows of a number column of such a table from a sample of its cells:
    `integral` (every present value is whole), and the smallest and largest whole value seen
    (`high` < 0 when no value was seen); `missing` empty cells (the first at `first_missing`,
    file:line:column) and `distinct` labels seen. The same rule as `labels_or_numbers`."""
    categorical = shape == () and integral and 0 <= low and 0 <= high < MAX_CLASSES
    because = None
    if integral and high < 0 and low >= 0:
        because = "no values (every cell is empty)"
    elif integral and low < 0:
        because = f"negative values (down to {low})"
    elif integral and high >= MAX_CLASSES:
        because = f"values up to {high} (at most {MAX_CLASSES} classes, 0..{MAX_CLASSES - 1})"
    return Column(shape, categorical=categorical, num_classes=high + 1 if categorical else None,
                  dtype="int64" if categorical else "float32", missing=missing, not_labels_because=because,
                  first_missing=first_missing, distinct=distinct if categorical else None)


def float32_problem(values: np.ndarray) -> Optional[str]:
    """Where a numeric array holds a value float32 cannot (inf, or beyond +-3.4e38), as
    "[3, 1] holds 1e+39, beyond float32's range"; None when it converts cleanly. NaN is fine
    (a missing value)."""
    import numpy as np

    values = np.asarray(values)
    if values.dtype.kind not in "fiu" or values.size == 0:
        return None
    if values.dtype.kind == "f":
        bad = np.isinf(values) | (np.isfinite(values) & (np.abs(values) > np.finfo(np.float32).max))
    else:
        bad = np.abs(values.astype(np.float64)) > np.finfo(np.float32).max
    if not bad.any():
        return None
    index = tuple(int(i) for i in np.argwhere(bad)[0])
    value = float(values[index])
    what = "an infinite value" if np.isinf(value) else f"{value:g}, beyond float32's range (+-3.4e38)"
    return f"at [{', '.join(map(str, index))}] holds {what}"


def split_indices(num_rows: int, fractions, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split: one seeded permutation cut by the split fractions.

    Sizes are rounded with the largest-remainder rule so they add up to `num_rows`; a split
    with a fraction above 0 gets at least one row when there are enough rows to go round.
    """
    import numpy as np

    sizes = split_sizes(num_rows, [float(getattr(fractions, name)) for name in SPLIT_NAMES])
    order_rng = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED]))
    permutation = order_rng.permutation(num_rows)
    out, start = {}, 0
    for name, size in zip(SPLIT_NAMES, sizes):
        out[name] = np.sort(permutation[start : start + size]).astype(np.int64)
        start += size
    return out


@dataclass
class Table:
    """A loaded dataset: columns (row-aligned NumPy arrays), their info, and seeded splits.

    `feature_columns` is the source's default input (e.g. `['x']` for scikit-learn and the
    synthetic generators, `['image']` for image folders); when None, the input is every
    column that no task uses as a target. `class_names` names the classes of `label` for
    image folders (and of `target` for bundled classification sets).
    """

    name: str
    columns: dict[str, np.ndarray]
    info: dict[str, Column]
    split_indices: dict[str, np.ndarray] = field(default_factory=dict)
    class_names: Optional[list[str]] = None
    feature_columns: Optional[list[str]] = None
    source: str = ""
    where: Optional[str] = None  # the file or callable the table came from, for messages

    @property
    def num_rows(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    # ------------------------------------------------------------------ columns

    def column(self, name: str, *, task: Optional[str] = None) -> np.ndarray:
        """One column by name; a missing name is a DataError with the closest match."""
        self.require([name], task=task)
        return self.columns[name]

    def require(self, names: Iterable[str], *, task: Optional[str] = None) -> None:
        """Raise a DataError naming the first of `names` that is not a column."""
        for name in names:
            if name not in self.columns:
                close = difflib.get_close_matches(name, list(self.columns), n=1)
                who = f"task '{task}' uses column '{name}'" if task else f"column '{name}' is used"
                hint = f"did you mean '{close[0]}'? " if close else ""
                raise DataError(
                    f"{who}, but dataset '{self.name}' has no such column",
                    hint=f"{hint}columns are: {', '.join(self.columns)}",
                    where=self.where,
                )

    def input_columns(self, names: Optional[list[str]] = None, targets: Iterable[str] = ()) -> list[str]:
        """The columns that make up the input: `names`, else the source's default, else every
        column that is neither a target nor text (the same rule as `polytask.spec.facts.input_columns`)."""
        targets = set(targets)
        if names is None:
            if self.feature_columns is not None:
                names = self.feature_columns
            else:
                names = [c for c in self.columns if c not in targets and self.info[c].dtype != "string"]
        names = list(names)
        self.require(names)
        if not names:
            raise DataError(
                f"dataset '{self.name}' has no input columns left once the targets "
                f"({', '.join(sorted(targets))}) are taken out",
                hint="add feature columns to the data or list them under `features:`",
                where=self.where,
            )
        overlap = [n for n in names if n in targets]
        if overlap:
            raise DataError(
                f"column '{overlap[0]}' of dataset '{self.name}' is both an input feature and a target",
                hint="remove it from `features:` or predict another column",
                where=self.where,
            )
        return names

    def features(
        self,
        names: Optional[list[str]] = None,
        targets: Iterable[str] = (),
        rows: Optional[np.ndarray] = None,
    ) -> np.ndarray:
        """The input matrix, float32: the named columns flattened per row and concatenated in order.

        A single column with per-example rank >= 2 (an image, a sequence) keeps its shape,
        e.g. (N, H, W, C); otherwise each column is flattened to (N, -1) and they are concatenated.
        Missing values are not allowed in inputs: a NaN (or a -1 label) in a feature column is
        a DataError that names the column.
        """
        import numpy as np

        names = self.input_columns(names, targets)
        for name in names:
            info = self.info[name]
            if info.dtype == "string":
                raise DataError(
                    f"column '{name}' of dataset '{self.name}' holds text and cannot be an input feature",
                    hint="encode it as numbers, or leave it out of `features:`",
                    where=self.where,
                )
            if info.missing:
                raise DataError(
                    f"feature column '{name}' of dataset '{self.name}' has {info.missing} missing value(s)",
                    hint="only target columns may have missing cells (those rows are masked out "
                    "of that task's loss); fill them or drop the rows",
                    where=self.where,
                )
        selected = [self.columns[n] if rows is None else self.columns[n][rows] for n in names]
        if len(selected) == 1 and selected[0].ndim >= 3:
            return np.asarray(selected[0], dtype=np.float32)
        count = len(selected[0])
        parts = [np.asarray(a, dtype=np.float32).reshape(count, -1) for a in selected]
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    # ------------------------------------------------------------------ splits

    def rows(self, split: str, *, required: bool = True) -> np.ndarray:
        """Row indices of a split; an empty split that is `required` is a DataError."""
        import numpy as np

        if split not in SPLIT_NAMES:
            raise ValueError(f"unknown split {split!r}; expected one of {SPLIT_NAMES}")
        indices = self.split_indices.get(split, np.zeros(0, np.int64))
        if required and len(indices) == 0:
            raise DataError(
                f"the {split} split of dataset '{self.name}' is empty ({self.num_rows} rows in total)",
                hint=f"give `{split}` a larger fraction under datasets.{self.name}.split "
                "(fractions must add up to 1), or use more data",
                where=self.where,
            )
        return indices

    def split(self, name: str, *, required: bool = True) -> dict[str, np.ndarray]:
        """All columns restricted to one split's rows."""
        indices = self.rows(name, required=required)
        return {column: values[indices] for column, values in self.columns.items()}

    def rows_by_class(self, column: str = "label", rows: Optional[np.ndarray] = None) -> list[np.ndarray]:
        """Row indices of each class of a categorical column, indexed by class id (missing labels skipped)."""
        import numpy as np

        self.require([column])
        info = self.info[column]
        if not info.categorical:
            raise DataError(f"column '{column}' of dataset '{self.name}' is not categorical", where=self.where)
        labels = self.columns[column]
        candidates = np.arange(len(labels)) if rows is None else np.asarray(rows)
        picked = labels[candidates]
        order = np.argsort(picked, kind="stable")
        bounds = np.searchsorted(picked[order], np.arange(info.num_classes + 1))
        return [candidates[order[bounds[c] : bounds[c + 1]]] for c in range(info.num_classes)]
