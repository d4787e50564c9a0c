"""Loading a dataset: the source descriptor's columns in, a `Table` with seeded splits out.

Each source is one descriptor module under `polytask.compiler.data.sources`, registered in
`polytask.spec.registry.SOURCES` (see `polytask.compiler.data.sources.Source`). A source
turns a dataset spec into columns (`load`) and, cheaply where it can, describes them
(`describe`). `load_table` adds the parts every source shares: dtype normalisation, column
info, equal row counts and the seeded train/validation/test split.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional


from polytask.compiler.data.table import Table, infer_column_info, normalize_column, split_indices
from polytask.errors import DataError, PolytaskError
from polytask.spec.facts import Column, input_columns
from polytask.spec.registry import SOURCES

if TYPE_CHECKING:
    import numpy as np


@dataclass
class SourceContext:
    """What a source may use besides its own spec: where paths resolve, the seed, permissions."""

    name: str
    loaded: Any  # polytask.spec.loader.LoadedSpec
    allow_code: bool = False
    seed: int = 0

    def resolve_path(self, value: str) -> Path:
        return Path(self.loaded.resolve_path(value))

    def rng(self, stream: str) -> np.random.Generator:
        """A generator seeded by the spec seed and a stream name, so streams never overlap."""
        import numpy as np

        return np.random.default_rng(np.random.SeedSequence([int(self.seed), zlib.crc32(stream.encode())]))

    def dataset_where(self, *field: str) -> str:
        """Where the dataset is declared: `spec.yaml:line:col` when the loader kept positions."""
        locate = getattr(self.loaded, "where", None)
        if callable(locate) and getattr(self.loaded, "source_map", None) is not None:
            for path in (("datasets", self.name, *field), ("datasets", self.name)):
                try:
                    return locate(*path)
                except Exception:  # a position the source map does not know: try the parent
                    continue
        spec_path = getattr(self.loaded, "path", None)
        dotted = ".".join(("datasets", self.name, *field))
        return f"{spec_path}: {dotted}" if spec_path else dotted


@dataclass
class Columns:
    """What `Source.load` returns: row-aligned arrays plus optional source metadata."""

    columns: dict[str, np.ndarray]
    class_names: Optional[list[str]] = None
    feature_columns: Optional[list[str]] = None
    info: dict[str, Column] = field(default_factory=dict)  # overrides of the inferred info
    where: Optional[str] = None
    # True when the source already chose each column's dtype (csv: -1 in an int64 column
    # marks a missing cell), so the generic array heuristics must not second-guess it.
    typed: bool = False
    # Rows of each split when the source defines the splits itself (TFDS's named splits);
    # None: the dataset's `split:` fractions cut the rows.
    split_rows: Optional[dict[str, np.ndarray]] = None


def get_source(name: str):
    """The source descriptor for `source: <name>`; an unknown name is a DataError."""
    try:
        return SOURCES.get(name)
    except PolytaskError as exc:
        raise DataError(exc.message, hint=exc.hint) from None


def available_sources() -> list[str]:
    return SOURCES.names()


def _finish(loaded_columns: Columns, context: SourceContext) -> Table:
    """Normalise dtypes, check row counts, infer column info; splits are added by load_table."""
    import numpy as np

    where = loaded_columns.where or context.dataset_where()
    if not loaded_columns.columns:
        raise DataError(f"dataset '{context.name}' has no columns", where=where)
    columns, info = {}, {}
    for column, values in loaded_columns.columns.items():
        try:
            columns[column] = values if loaded_columns.typed else normalize_column(values)
        except TypeError as exc:
            raise DataError(f"column '{column}' of dataset '{context.name}': {exc}", where=where) from None
        info[column] = loaded_columns.info.get(column) or infer_column_info(columns[column])
    lengths = {column: len(values) if np.ndim(values) else -1 for column, values in columns.items()}
    if len(set(lengths.values())) != 1:
        listing = ", ".join(f"{c}: {n}" for c, n in lengths.items())
        raise DataError(
            f"the columns of dataset '{context.name}' have different numbers of rows ({listing})",
            hint="every column needs one row per example",
            where=where,
        )
    if next(iter(lengths.values())) <= 0:
        raise DataError(f"dataset '{context.name}' has no rows", hint="point it at a file with data", where=where)
    return Table(
        name=context.name,
        columns=columns,
        info=info,
        class_names=loaded_columns.class_names,
        feature_columns=loaded_columns.feature_columns,
        where=where,
    )


def _context(name, loaded, allow_code, seed) -> SourceContext:
    if seed is None:
        seed = getattr(getattr(loaded, "spec", None), "seed", 0) or 0
    # Code runs if the caller allows it here, or allowed it when loading the spec
    # (`load_spec(..., allow_code=True)` records the user's --allow-code on LoadedSpec).
    allow_code = bool(allow_code or getattr(loaded, "allow_code", False))
    return SourceContext(name=name, loaded=loaded, allow_code=allow_code, seed=int(seed))


def load_table(name: str, dataset, loaded, *, allow_code: bool = False, seed: Optional[int] = None) -> Table:
    """Load dataset `name` (a spec dataset model) into a `Table` with seeded splits.

    Raises `DataError` (message, hint, where) for anything the user can fix: missing files,
    bad cells, unreadable images, a train split with no rows, code refused without opt-in.
    `python` datasets run only if `allow_code` is true here or on `loaded` (the user's
    --allow-code, recorded by `load_spec`). `seed` defaults to the spec's seed.
    """
    context = _context(name, loaded, allow_code, seed)
    source = get_source(dataset.source)
    columns = source.load(dataset, context)
    table = _finish(columns, context)
    table.source = dataset.source
    if columns.split_rows is not None:
        import numpy as np

        table.split_indices = {name: columns.split_rows.get(name, np.zeros(0, np.int64))
                               for name in ("train", "validation", "test")}
    else:
        table.split_indices = split_indices(table.num_rows, dataset.split, context.seed)
    table.rows("train")  # an empty train split is always an error
    return table


def default_input_columns(dataset, info: dict[str, Column], targets) -> list[str]:
    """The input columns of a task that names none, without loading the data
    (`polytask.spec.facts.input_columns`, the rule `polytask check` uses too)."""
    return input_columns(dataset, None, targets, info)


def describe_table(name: str, dataset, loaded, *, allow_code: bool = False, seed: Optional[int] = None) -> dict[str, Column]:
    """Column info without building the table: headers, shapes and metadata where the source can.

    Used by `polytask plan` and data checks. Raises `DataError` like `load_table`.
    """
    context = _context(name, loaded, allow_code, seed)
    return get_source(dataset.source).describe(dataset, context)
