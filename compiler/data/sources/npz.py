"""`source: npz`: named arrays in a NumPy .npz file (`np.savez`), one row per example.

Every array is a column; `features` (default `x`) names the input array. Arrays must share
their first dimension. dtypes: floats -> float32; integers and bools that look like class
labels (one value per example, -1..999) -> int64 categorical (num_classes = max + 1; -1 marks
a missing label); other integers -> float32; text stays text. NaN in a float array is a
missing value. Object arrays are refused (loading them would unpickle, i.e. run code).
"""
from __future__ import annotations

import difflib
import zipfile

import numpy as np

from polytask.compiler.data.files import cached, existing_path, stat_key
from polytask.compiler.data.registry import Columns, DataSource, SourceContext, register_source
from polytask.compiler.data.table import infer_column_info, normalize_column
from polytask.errors import DataError


def read_npz(path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
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
    return {name: normalize_column(array) for name, array in arrays.items()}


@register_source("npz")
class NpzSource(DataSource):
    """Arrays in a .npz file."""

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
