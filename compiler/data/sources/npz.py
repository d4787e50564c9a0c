"""`source: npz`: named arrays in a NumPy .npz file (`np.savez`), one row per example.

Every array is a column; `features` (default `x`) names the input array. Arrays must share
their first dimension. dtypes: floats -> float32; integers and bools that look like class
labels (one value per example, -1..999) -> int64 categorical (num_classes = max + 1; -1 marks
a missing label); other integers -> float32; text stays text. NaN in a float array is a
missing value. Object arrays are refused (loading them would unpickle, i.e. run code).
"""
from __future__ import annotations

from pydantic import Field

import difflib
import zipfile
from typing import TYPE_CHECKING, Literal


from polytask.compiler.data.files import cached, existing_path, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.compiler.data.table import float32_problem, infer_column_info, normalize_column
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
    for name, array in arrays.items():
        if array.ndim == 0:
            raise DataError(
                f"array '{name}' in {path.name} is a scalar, not one value per example",
                hint="every array needs a first dimension of one entry per example",
                where=str(path),
            )
        if array.dtype.kind not in "biufUSO":
            raise DataError(f"array '{name}' in {path.name} holds {array.dtype} values, not real numbers or text",
                            hint="save real numbers (complex, datetime and structured arrays cannot be used)",
                            where=str(path))
        problem = float32_problem(array)
        if problem:
            raise DataError(f"array '{name}' in {path.name}: {problem}",
                            hint="rescale it, or use NaN for a missing value", where=str(path))
    return {name: normalize_column(array) for name, array in arrays.items()}


def _npy_header(handle):
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def probe_npz(params, resolve, report) -> Facts:
    """Array names, shapes and dtypes from the .npy headers inside the zip (for `polytask check`)."""
    import numpy as np

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
                array = member[: -len(".npy")]
                with archive.open(member) as handle:
                    shape, _, dtype = _npy_header(handle)
                if dtype.kind == "O":
                    report("PT306", f"array '{array}' in {path.name} holds Python objects (refused: loading "
                           "them would run code)", hint="save numbers or text arrays")
                    continue
                categorical, classes = None, None
                if dtype.kind == "f":
                    categorical = False
                elif dtype.kind in "US":
                    categorical = None
                elif dtype.kind in "iub" and len(shape) == 1:
                    info = archive.getinfo(member)
                    if info.file_size <= NPZ_READ_LIMIT:
                        with archive.open(member) as handle:
                            values = np.lib.format.read_array(handle, allow_pickle=False)
                        present = values[values != -1] if values.size else values
                        top = int(present.max()) if present.size else -1
                        categorical = bool(present.size == 0 or (int(present.min()) >= 0 and top < MAX_CLASSES))
                        if values.size and int(values.min()) == -1 and set(np.unique(values).tolist()) == {-1, 1}:
                            categorical = False  # +-1 numbers, as the loader reads them (normalize_column)
                        classes = top + 1 if categorical else None
                elif dtype.kind in "iub":
                    categorical = False
                # as the loader stores them: floats and integers that are not labels -> float32
                kind = ("string" if dtype.kind in "US" else "float32" if dtype.kind == "f" or categorical is False
                        else "int64" if categorical else None)
                columns[array] = Column(tuple(int(d) for d in shape[1:]), categorical=categorical,
                                        num_classes=classes, dtype=kind)
                rows[array] = int(shape[0]) if shape else 0
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
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
        if dataset.features not in arrays:
            close = difflib.get_close_matches(dataset.features, list(arrays), n=1)
            raise DataError(
                f"the input array '{dataset.features}' is not in {path.name}",
                hint=(f"did you mean '{close[0]}'? " if close else "")
                + f"arrays are: {', '.join(arrays)}; set `features:` to the input array's name",
                where=str(path),
            )
        return path, arrays

    def load(self, dataset, context: SourceContext) -> Columns:
        path, arrays = self._read(dataset, context)
        return Columns(columns=dict(arrays), feature_columns=[dataset.features], where=str(path))

    def describe(self, dataset, context: SourceContext):
        _, arrays = self._read(dataset, context)
        return {name: infer_column_info(values) for name, values in arrays.items()}
