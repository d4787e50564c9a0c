"""`source: parquet`: a table in an Apache Parquet file, read with pyarrow (`polytask[parquet]`).

The columns follow csv's rules (`polytask.compiler.data.table.labels_or_numbers`), whatever
the file's number types say: a number column whose values are whole and in 0..999 holds
class labels (int64, -1 where the value is null), any other number column is float32 (NaN
where null). The file's types are not trusted for this because pandas writes an integer
column with a missing value as float64. So a task whose target is null on a row skips that
row in its loss, and input features may not be null, exactly as with csv. Booleans are 0/1
labels, text columns are `string` (not inputs), and a list column whose rows all have the
same length (`fixed_size_list`, or a `list` of equal lengths) is one column of shape (L,),
e.g. a sequence. The input is `features` (default: every column no task uses as a target).

Errors name the file, the column and, for an infinite value, the row. `polytask check` reads
the schema, the row count and a sample of rows (like csv), never TensorFlow.
"""
from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field

from polytask.compiler.data.files import cached, existing_path, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.compiler.data.sources.csv import CSV_SAMPLE_ROWS
from polytask.compiler.data.table import infer_column_info, labels_or_numbers, number_column_facts
from polytask.errors import DataError
from polytask.spec.data_checks import missing
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES

if TYPE_CHECKING:
    import numpy as np

INSTALL_HINT = "install the extra: pip install 'polytask[parquet]' (or pip install pyarrow)"


class ParquetDataset(DatasetBase):
    """A table in a Parquet file: feature columns in, one or more target columns out."""

    source: Literal["parquet"] = Field(description='`parquet`')
    path: str = Field(description="The .parquet file; relative to the spec's folder.")
    features: Optional[list[str]] = Field(
        None, min_length=1, description="Input columns; default: every column that no task uses as a target."
    )


def _pyarrow():
    """pyarrow.parquet, or a DataError naming the extra to install."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("reading parquet files needs pyarrow, which is not installed", hint=INSTALL_HINT) from None
    return pq


def _kind(arrow_type) -> str:
    """'number' | 'string' | 'list' | 'other' for an Arrow type."""
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type):
        return "number"
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return "string"
    if (pa.types.is_fixed_size_list(arrow_type) or pa.types.is_list(arrow_type)
            or pa.types.is_large_list(arrow_type)) and _kind(arrow_type.value_type) == "number":
        return "list"
    return "other"


def _unsupported(name: str, arrow_type, path) -> DataError:
    return DataError(f"column '{name}' has type {arrow_type}, which polytask cannot use",
                     hint="store numbers, booleans, text, or lists of numbers of one length",
                     where=str(path))


def _numbers(array) -> tuple[np.ndarray, np.ndarray]:
    """A numeric Arrow array -> (float64 values, null mask)."""
    import numpy as np
    import pyarrow as pa

    array = array.cast(pa.float64())
    mask = np.asarray(array.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    values = np.asarray(array.fill_null(float("nan")).to_numpy(zero_copy_only=False), dtype=np.float64)
    return values, mask | np.isnan(values)


def _list_column(name: str, array, path) -> np.ndarray:
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    if array.null_count:
        raise DataError(f"column '{name}' has {array.null_count} null list(s)",
                        hint="list columns (sequences) may not be missing", where=str(path))
    lengths = np.asarray(pc.list_value_length(array).to_numpy(zero_copy_only=False))
    if len(lengths) and lengths.min() != lengths.max():
        raise DataError(f"column '{name}' holds lists of different lengths ({int(lengths.min())} to "
                        f"{int(lengths.max())})", hint="pad the lists to one length", where=str(path))
    flat = pc.list_flatten(array)
    if flat.null_count:
        raise DataError(f"column '{name}' has null values inside its lists", where=str(path))
    width = int(lengths[0]) if len(lengths) else 0
    values = np.asarray(flat.cast(pa.float32()).to_numpy(zero_copy_only=False), dtype=np.float32)
    return values.reshape(len(array), width)


def read_parquet(path) -> tuple[list[str], dict[str, np.ndarray]]:
    """Parse a parquet file into typed columns (csv's rules); problems are DataErrors naming the file."""
    import numpy as np

    pq = _pyarrow()
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises ArrowInvalid, OSError, ... for unreadable files
        raise DataError(f"cannot read {path.name} as a parquet file: {exc}", where=str(path)) from None
    if table.num_rows == 0:
        raise DataError("the parquet file has no rows", hint="write rows to it", where=str(path))
    columns = {}
    for name in table.column_names:
        array = table.column(name).combine_chunks()
        kind = _kind(array.type)
        if kind == "number":
            values, empty = _numbers(array)
            bad = ~(np.isfinite(values) | empty)
            if bad.any():
                raise DataError(f"column '{name}' has an infinite value (row {int(np.argmax(bad))})",
                                hint="replace it with a finite number, or null for a missing value", where=str(path))
            columns[name] = labels_or_numbers(values, empty)
        elif kind == "string":
            columns[name] = np.asarray([v if v is not None else "" for v in array.to_pylist()], dtype=str)
        elif kind == "list":
            columns[name] = _list_column(name, array, path)
        else:
            raise _unsupported(name, array.type, path)
    return list(table.column_names), columns


def probe_parquet(params, resolve, report) -> Facts:
    """The schema, the row count and, from a bounded sample of rows, each column's kind."""
    import numpy as np

    path = resolve(params.path)
    if not path.is_file():
        missing(report, path, "parquet file")
        return Facts()
    try:
        pq = _pyarrow()
    except DataError as exc:
        report("PT306", exc.message, hint=exc.hint)
        return Facts()
    try:
        handle = pq.ParquetFile(path)
        rows = handle.metadata.num_rows
        sample = next(handle.iter_batches(batch_size=CSV_SAMPLE_ROWS), None)
    except Exception as exc:
        report("PT306", f"cannot read {path.name} as a parquet file: {exc}")
        return Facts()
    if rows == 0 or sample is None:
        report("PT306", f"{path.name} has no rows", hint="write rows to it")
        return Facts()
    columns = {}
    for name, arrow_type in zip(handle.schema_arrow.names, handle.schema_arrow.types):
        kind = _kind(arrow_type)
        if kind == "number":
            values, empty = _numbers(sample.column(name))
            known = values[~empty]
            whole = known[np.isfinite(known)]
            integral = bool(np.all(whole == np.round(whole))) and whole.size == known.size
            low = int(min(0, whole.min())) if whole.size and integral else 0
            high = int(whole.max()) if whole.size and integral else -1
            columns[name] = number_column_facts(integral, low, high)
        elif kind == "string":
            columns[name] = Column((), dtype="string")
        elif kind == "list":
            size = getattr(arrow_type, "list_size", None)
            columns[name] = Column((size,) if size else None, dtype="float32")
        else:
            report("PT306", f"{path.name}: column '{name}' has type {arrow_type}, which polytask cannot use",
                   hint="store numbers, booleans, text, or lists of numbers of one length")
            return Facts()
    return Facts(columns=columns, rows=rows)


@SOURCES.register
class Parquet(Source):
    """A table in an Apache Parquet file (pyarrow): csv's column rules, plus text and list columns."""

    name = "parquet"
    Params = ParquetDataset
    default_input = "all non-target columns, or `features:`"
    other_columns = "one per column (lists of one length: shape (L,))"
    reads = "a `.parquet` file (extra `polytask[parquet]`)"
    missing_column_code = "PT302"

    def facts(self, params, resolve, report) -> Facts:
        return probe_parquet(params, resolve, report)

    def _read(self, dataset, context: SourceContext):
        path = existing_path(context, dataset.path, what="parquet file")
        try:
            header, columns = cached(("parquet", stat_key(path)), lambda: read_parquet(path))
        except DataError as exc:
            exc.where = exc.where or context.dataset_where("path")
            raise
        for name in dataset.features or []:
            if name not in columns:
                close = difflib.get_close_matches(name, header, n=1)
                raise DataError(
                    f"feature column '{name}' is not in {path.name}",
                    hint=(f"did you mean '{close[0]}'? " if close else "") + f"columns are: {', '.join(header)}",
                    where=context.dataset_where("features"),
                )
        return path, columns

    def load(self, dataset, context: SourceContext) -> Columns:
        path, columns = self._read(dataset, context)
        return Columns(columns=dict(columns), feature_columns=dataset.features, where=str(path), typed=True)

    def describe(self, dataset, context: SourceContext):
        _, columns = self._read(dataset, context)
        return {name: infer_column_info(values) for name, values in columns.items()}


__all__ = ["Parquet", "ParquetDataset", "read_parquet"]
