"""`source: python`: columns returned by a Python callable `module:attr` (opt-in only).

Importing and calling user code is code execution, so it runs only when the caller passes
`allow_code=True` (the CLI's `--allow-code`); otherwise this source refuses with a
DataError saying so. The spec file's folder is put first on `sys.path` while importing,
so a `mydata.py` next to the spec is found. The callable takes no arguments and returns a
mapping of column name to array-like, all with the same number of rows. `features` lists the
input columns (default: every column no task uses as a target).
"""
from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping
from typing import Literal, Optional

from pydantic import Field

from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.errors import DataError
from polytask.spec.facts import DatasetBase
from polytask.spec.registry import SOURCES


class PythonDataset(DatasetBase):
    """Arrays returned by a Python callable `module:attr` (code execution: opt-in only).

    The callable takes no arguments and returns a mapping of column name to array.
    """

    source: Literal["python"] = Field(description='`python`')
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$", description='`module:attr`; the module is looked up next to the spec first.')
    features: Optional[list[str]] = Field(None, min_length=1, description='Input columns; default: every column no task uses as a target.')


def resolve_callable(reference: str, base_dir, where: str):
    module_name, _, attr = reference.partition(":")
    added = base_dir is not None and str(base_dir) not in sys.path
    if added:
        sys.path.insert(0, str(base_dir))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise DataError(
            f"cannot import module '{module_name}' for {reference}: {exc}",
            hint="put the module next to the spec file or on PYTHONPATH",
            where=where,
        ) from None
    except Exception as exc:  # user code failed while importing: report it, no traceback
        raise DataError(f"importing '{module_name}' raised {type(exc).__name__}: {exc}", where=where) from None
    finally:
        if added:
            sys.path.remove(str(base_dir))
    try:
        return getattr(module, attr)
    except AttributeError:
        raise DataError(f"module '{module_name}' has no attribute '{attr}'", where=where) from None


@SOURCES.register
class Python(Source):
    """Arrays from user code (`module:attr`), refused unless code execution is allowed."""

    name = "python"
    Params = PythonDataset
    default_input = "`features:` or all non-targets"
    other_columns = "whatever the callable returns"
    reads = "your code (`--allow-code`)"

    def load(self, dataset, context: SourceContext) -> Columns:
        import numpy as np

        where = context.dataset_where("callable")
        if not context.allow_code:
            raise DataError(
                f"dataset '{context.name}' runs Python code ({dataset.callable}), which is off by default",
                hint="pass --allow-code if you trust this spec's code",
                where=where,
            )
        base_dir = getattr(context.loaded, "base_dir", None)
        function = resolve_callable(dataset.callable, base_dir, where)
        if not callable(function):
            raise DataError(f"{dataset.callable} is not callable", where=where)
        try:
            result = function()
        except Exception as exc:  # user code: report it, no traceback
            raise DataError(f"{dataset.callable}() raised {type(exc).__name__}: {exc}", where=where) from None
        if not isinstance(result, Mapping) and callable(getattr(result, "items", None)):
            result = dict(result.items())  # e.g. a pandas DataFrame: column name -> Series
        if not isinstance(result, Mapping) or not result:
            raise DataError(
                f"{dataset.callable}() returned {type(result).__name__}, not a mapping of column name to array",
                hint="return e.g. {'x': x, 'y': y}",
                where=where,
            )
        columns = {}
        for name, values in result.items():
            try:
                array = np.asarray(values)
            except Exception as exc:
                raise DataError(f"column '{name}' from {dataset.callable}() is not an array: {exc}", where=where) from None
            if not isinstance(name, str) or array.ndim == 0 or array.dtype.kind not in "biufUS":
                raise DataError(
                    f"column {name!r} from {dataset.callable}() must be a named array of numbers or text, one row per example "
                    f"(got dtype {array.dtype}, shape {array.shape})",
                    where=where,
                )
            columns[name] = array
        if dataset.features is not None:
            missing = [f for f in dataset.features if f not in columns]
            if missing:
                raise DataError(
                    f"feature column '{missing[0]}' is not among the columns {dataset.callable}() returned",
                    hint=f"columns are: {', '.join(columns)}",
                    where=where,
                )
        return Columns(columns=columns, feature_columns=dataset.features, where=where)
