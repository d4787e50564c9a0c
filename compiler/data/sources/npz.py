"""`source: npz`: named arrays in a NumPy .npz file (`np.savez`), one row per example.

Every array is a column; `features` (default `x`) names the input array. Arrays must share
their first dimension. dtypes: floats -> float32; integers and bools that look like class
labels (one value per example, -1..999) -> int64 categorical (num_classes = max + 1; -1 marks
a missing label); other integers -> float32; text stays text. NaN in a float array is a
missing value. Object arrays are refused (loading them would unpickle, i.e. run code).
"""
from __future__ import annotations

from pydantic import Field

import array
import ast
import difflib
import struct
import sys
import zipfile
from typing import TYPE_CHECKING, Literal, NamedTuple, Optional


from polytask.compiler.data.files import cached, existing_path, raising_report, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.compiler.data.table import float32_problem, normalize_column
from polytask.errors import DataError
from polytask.spec.data_checks import missing
from polytask.spec.facts import MAX_CLASSES, Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES

if TYPE_CHECKING:
    import numpy as np

NPZ_READ_LIMIT = 4_000_000  # bytes of a 1-D integer array `polytask check` reads to count its classes


class NpzDataset(DatasetBase):
    """Arrays in a NumPy .npz file: `features` names the input array, targets name others."""

    source: Literal["npz"] = Field(description='`npz`')
    path: str = Field(description="The .npz file; relative to the spec's folder.")
    features: str = Field("x", description="The input array's name.")


def read_npz(path) -> dict[str, np.ndarray]:
    import numpy as np

    try:  # our own handle: np.load leaks the one it opens when the archive is damaged
        with open(path, "rb") as handle, np.load(handle, allow_pickle=False) as archive:
            arrays = {}
            for name in archive.files:
                try:
                    arrays[name] = archive[name]
                except ValueError as exc:
                    raise DataError(
                        f"array '{name}' in {path.name} cannot be loaded: {exc}",
                        hint="save numeric or string arrays (object arrays need pickle, which polytask refuses)",
                        where=str(path),
                    ) from None
    except DataError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read {path} as a .npz file: {exc}", hint="write it with numpy.savez", where=str(path)) from None
    if not isinstance(arrays, dict) or not arrays:
        raise DataError(f"{path.name} holds no arrays", where=str(path))
    for name, values in arrays.items():
        if values.ndim == 0:
            raise DataError(
                f"array '{name}' in {path.name} is a scalar, not one value per example",
                hint="every array needs a first dimension of one entry per example",
                where=str(path),
            )
        if values.dtype.kind not in "biufUSO":
            raise DataError(f"array '{name}' in {path.name} holds {values.dtype} values, not real numbers or text",
                            hint="save real numbers (complex, datetime and structured arrays cannot be used)",
                            where=str(path))
        problem = float32_problem(values)
        if problem:
            raise DataError(f"array '{name}' in {path.name}: {problem}",
                            hint="rescale it, or use NaN for a missing value", where=str(path))
    return {name: normalize_column(values) for name, values in arrays.items()}


class NpyDtype(NamedTuple):
    """An array's dtype as a .npy header states it (`descr` such as '<i8', '|b1', '<U5')."""

    kind: str  # NumPy's dtype.kind: i u b f c U S O V M m
    itemsize: int
    little_endian: bool


def _npy_header(handle) -> tuple[tuple, NpyDtype]:
    """(shape, dtype) from a .npy header, read without NumPy (the format is a magic string, a
    version, a length and a Python dict literal), so `check` and `plan` need no NumPy."""
    if handle.read(6) != b"\x93NUMPY":
        raise ValueError("not a .npy array (bad magic string)")
    major, _minor = handle.read(2)
    if major == 1:
        (length,) = struct.unpack("<H", handle.read(2))
    elif major in (2, 3):
        (length,) = struct.unpack("<I", handle.read(4))
    else:
        raise ValueError(f"unsupported .npy format version {major}")
    header = ast.literal_eval(handle.read(length).decode("utf-8" if major == 3 else "latin1"))
    descr = header.get("descr") if isinstance(header, dict) else None
    shape = tuple(header.get("shape", ())) if isinstance(header, dict) else ()
    if not isinstance(descr, str) or len(descr) < 3:  # structured dtypes are lists of fields
        return shape, NpyDtype("V", 0, True)
    order, kind, size = descr[0], descr[1], descr[2:]
    little = order == "<" or (order in "=|" and sys.byteorder == "little")
    return shape, NpyDtype(kind, int(size) if size.isdigit() else 0, little)


def _read_integers(handle, count: int, dtype: NpyDtype) -> array.array:
    """A 1-D integer or bool array's values (C order) with the standard library's `array`."""
    code = next(c for c in "bhilq" if array.array(c).itemsize == dtype.itemsize)
    values = array.array(code.upper() if dtype.kind in "ub" else code)
    values.frombytes(handle.read(count * dtype.itemsize))
    if len(values) != count:
        raise ValueError("the array's data is shorter than its header says")
    if dtype.little_endian != (sys.byteorder == "little"):
        values.byteswap()
    return values


def _rows_with_nan(handle, shape: tuple, dtype: NpyDtype) -> int:
    """Rows of a float array (C order) with a NaN anywhere in them, read in chunks of rows."""
    code = {4: "f", 8: "d"}.get(dtype.itemsize)
    if code is None:  # float16 / long double: the loader reports these; nothing to count here
        return 0
    width = 1
    for d in shape[1:]:
        width *= int(d)
    swap = dtype.little_endian != (sys.byteorder == "little")
    missing_rows, chunk_rows = 0, max(1, 1_000_000 // max(width, 1))
    for start in range(0, shape[0], chunk_rows):
        count = min(chunk_rows, shape[0] - start)
        values = array.array(code)
        values.frombytes(handle.read(count * width * dtype.itemsize))
        if len(values) != count * width:
            raise ValueError("the array's data is shorter than its header says")
        if swap:
            values.byteswap()
        for row in range(count):
            if any(v != v for v in values[row * width:(row + 1) * width]):
                missing_rows += 1
    return missing_rows


def probe_npz(params, resolve, report, *, read_limit: Optional[int] = NPZ_READ_LIMIT) -> Facts:
    """Array names, shapes and dtypes from the .npy headers inside the zip, and the classes of
    1-D integer arrays up to `read_limit` bytes (None: all). `check` and `plan` use it."""
    path = resolve(params.path)
    if not path.is_file():
        missing(report, path, "npz file")
        return Facts()
    columns, rows = {}, {}
    try:
        with zipfile.ZipFile(path) as archive:
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                array_name = member[: -len(".npy")]
                with archive.open(member) as handle:
                    shape, dtype = _npy_header(handle)
                    if dtype.kind in "OV":
                        report("PT306", f"array '{array_name}' in {path.name} holds Python objects or records "
                               "(refused: loading objects would run code)", hint="save numbers or text arrays")
                        continue
                    if dtype.kind in "cmM":
                        report("PT306", f"array '{array_name}' in {path.name} holds complex or date/time values, "
                               "not real numbers or text", hint="save real numbers")
                        continue
                    if not shape:
                        report("PT306", f"array '{array_name}' in {path.name} is a scalar, not one value per "
                               "example", hint="every array needs a first dimension of one entry per example")
                        continue
                    categorical, classes, missing_rows = None, None, 0
                    if dtype.kind == "f":
                        categorical = False
                        if read_limit is None:  # plan: rows with a NaN are missing values
                            missing_rows = _rows_with_nan(handle, shape, dtype)
                    elif dtype.kind in "US":
                        categorical = False  # text stays text (the loader's rule)
                    elif dtype.kind in "iub" and len(shape) == 1:
                        size = shape[0] * dtype.itemsize
                        if read_limit is None or size <= read_limit:
                            values = _read_integers(handle, shape[0], dtype)
                            present = [v for v in values if v != -1]
                            missing_rows = len(values) - len(present)
                            top = max(present) if present else -1
                            categorical = not present or (min(present) >= 0 and top < MAX_CLASSES)
                            if values and min(values) == -1 and set(values) == {-1, 1}:
                                categorical = False  # +-1 numbers, as the loader reads them (normalize_column)
                            classes = top + 1 if categorical else None
                            if not categorical:
                                missing_rows = 0  # -1 is a number here, not a missing label
                    elif dtype.kind in "iub":
                        categorical = False
                # as the loader stores them: floats and integers that are not labels -> float32
                kind = ("string" if dtype.kind in "US" else "float32" if dtype.kind == "f" or categorical is False
                        else "int64" if categorical else None)
                columns[array_name] = Column(tuple(int(d) for d in shape[1:]), categorical=categorical,
                                             num_classes=classes, dtype=kind, missing=missing_rows)
                rows[array_name] = int(shape[0])
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, SyntaxError, struct.error) as exc:
        report("PT306", f"cannot read {path.name} as an npz file: {exc}")
        return Facts()
    if not columns:
        report("PT306", f"{path.name} holds no arrays", hint="write it with numpy.savez(path, x=..., y=...)")
        return Facts()
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in rows.items())
        report("PT307", f"the arrays in {path.name} have different numbers of rows ({listing})",
               hint="every array needs one row per example (the same first dimension)")
    return Facts(columns=columns, rows=max(rows.values()))


@SOURCES.register
class Npz(Source):
    """Arrays in a NumPy .npz file: `features` names the input array, targets name others."""

    name = "npz"
    Params = NpzDataset
    default_input = "the array named by `features:` (default `x`)"
    other_columns = "one per array"
    reads = "a NumPy `.npz`"
    missing_column_code = "PT303"
    column_noun = "array"

    def facts(self, params, resolve, report) -> Facts:
        return probe_npz(params, resolve, report)

    def _read(self, dataset, context: SourceContext):
        path = existing_path(context, dataset.path, what=".npz file")
        arrays = cached(("npz", stat_key(path)), lambda: read_npz(path))
        _check_features(dataset, arrays, path)
        return path, arrays

    def load(self, dataset, context: SourceContext) -> Columns:
        path, arrays = self._read(dataset, context)
        return Columns(columns=dict(arrays), feature_columns=[dataset.features], where=str(path))

    def describe(self, dataset, context: SourceContext):
        """Every array's facts from the .npy headers (and label arrays), without NumPy."""
        path = existing_path(context, dataset.path, what=".npz file")
        facts = probe_npz(dataset, lambda _: path, raising_report(path), read_limit=None)
        _check_features(dataset, facts.columns, path)
        return dict(facts.columns)


def _check_features(dataset, arrays, path) -> None:
    if dataset.features not in arrays:
        close = difflib.get_close_matches(dataset.features, list(arrays), n=1)
        raise DataError(
            f"the input array '{dataset.features}' is not in {path.name}",
            hint=(f"did you mean '{close[0]}'? " if close else "")
            + f"arrays are: {', '.join(arrays)}; set `features:` to the input array's name",
            where=str(path),
        )
