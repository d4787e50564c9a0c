"""The data-source registry: `source:` name in a spec -> the code that loads it.

Each source is one module under `polytask.compiler.data.sources` that decorates a class
with `@register_source("<name>")`; the package imports every module it finds there, so
adding a source is adding one file. A source turns a dataset spec into columns:

    @register_source("csv")
    class CsvSource(DataSource):
        def load(self, dataset, context) -> Columns: ...
        def describe(self, dataset, context) -> dict[str, ColumnInfo]: ...   # optional, cheap

`load_table` adds the parts every source shares: dtype normalisation, column info, equal
row counts and the seeded train/validation/test split.
"""
from __future__ import annotations

import importlib
import pkgutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

import numpy as np

from polytask.compiler.data.table import ColumnInfo, Table, infer_column_info, normalize_column, split_indices
from polytask.errors import DataError

_SOURCES: dict[str, "DataSource"] = {}


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
    """What `DataSource.load` returns: row-aligned arrays plus optional source metadata."""

    columns: dict[str, np.ndarray]
    class_names: Optional[list[str]] = None
    feature_columns: Optional[list[str]] = None
    info: dict[str, ColumnInfo] = field(default_factory=dict)  # overrides of the inferred info
    where: Optional[str] = None
    # True when the source already chose each column's dtype (csv: -1 in an int64 column
    # marks a missing cell), so the generic array heuristics must not second-guess it.
    typed: bool = False


class DataSource:
    """Base class for a data source: `load` is required, `describe` defaults to loading."""

    name: str = ""

    def load(self, dataset, context: SourceContext) -> Columns:
        raise NotImplementedError

    def describe(self, dataset, context: SourceContext) -> dict[str, ColumnInfo]:
        return _finish(self.load(dataset, context), context).info

    def default_features(self, dataset) -> Optional[list[str]]:
        """The input columns when a task names none; None means every non-target column."""
        declared = getattr(dataset, "features", None)
        if declared is None:
            return None
        return [declared] if isinstance(declared, str) else list(declared)


def register_source(name: str) -> Callable[[type], type]:
    """Class decorator: make a `DataSource` subclass available as `source: <name>`."""

    def decorate(cls: type) -> type:
        if name in _SOURCES and type(_SOURCES[name]) is not cls:
            raise ValueError(f"data source {name!r} is already registered by {type(_SOURCES[name]).__name__}")
        instance = cls()
        instance.name = name
        _SOURCES[name] = instance
        return cls

    return decorate


def _import_all(package: str) -> None:
    module = importlib.import_module(package)
    for info in pkgutil.iter_modules(module.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")


def available_sources() -> list[str]:
    _import_all("polytask.compiler.data.sources")
    return sorted(_SOURCES)


def get_source(name: str) -> DataSource:
    if name not in _SOURCES:
        _import_all("polytask.compiler.data.sources")
    if name not in _SOURCES:
        raise DataError(
            f"unknown data source '{name}'",
            hint=f"available sources: {', '.join(sorted(_SOURCES))}",
        )
    return _SOURCES[name]


def _finish(loaded_columns: Columns, context: SourceContext) -> Table:
    """Normalise dtypes, check row counts, infer column info; splits are added by load_table."""
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
    table = _finish(source.load(dataset, context), context)
    table.source = dataset.source
    table.split_indices = split_indices(table.num_rows, dataset.split, context.seed)
    table.rows("train")  # an empty train split is always an error
    return table


def default_input_columns(dataset, info: dict[str, ColumnInfo], targets) -> list[str]:
    """The input columns of a task that names none, without loading the data.

    The dataset's `features:` if it declares them, else the source's own input (`x` for
    sklearn and synthetic, `image` for image folders), else every column that is not a
    target and not text. `Table.input_columns(None, targets)` gives the same answer.
    """
    declared = get_source(dataset.source).default_features(dataset)
    if declared is not None:
        return declared
    targets = set(targets)
    return [c for c, column in info.items() if c not in targets and column.dtype != "string"]


def describe_table(name: str, dataset, loaded, *, allow_code: bool = False, seed: Optional[int] = None) -> dict[str, ColumnInfo]:
    """Column info without building the table: headers, shapes and metadata where the source can.

    Used by `polytask plan` and data checks. Raises `DataError` like `load_table`.
    """
    context = _context(name, loaded, allow_code, seed)
    return get_source(dataset.source).describe(dataset, context)
