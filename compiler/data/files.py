"""Shared helpers for file-backed sources: resolving paths with good errors, and caching.

Parsed files are cached per process, keyed by the resolved path, its size and mtime and the
options that change the result, so `describe_table` followed by `load_table` (as `plan`
then `train` do) reads a file once, and an edited file is read again. Cached arrays are
made read-only so no caller can change what the next caller gets.
"""
from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable


from polytask.errors import DataError, special_file

_CACHE: "OrderedDict[Hashable, tuple[Any, int]]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
CACHE_ENTRIES = 16
# Decoded data kept per process; $POLYTASK_DATA_CACHE_MB overrides (0 turns caching off).
CACHE_BYTES = int(float(os.environ.get("POLYTASK_DATA_CACHE_MB", "2048")) * 2**20)


def existing_path(context, value: str, *, what: str = "file", allow_dir: bool = False) -> Path:
    """Resolve a spec path against the spec's folder; a missing path is a DataError that says where it looked."""
    path = context.resolve_path(value)
    problem = special_file(path)
    if problem:
        raise DataError(problem, hint="polytask reads regular files only", where=context.dataset_where("path"))
    if not path.exists():
        raise DataError(
            f"{what} not found: {path}",
            hint=f"relative paths are resolved against the spec file's folder; check datasets.{context.name}.path",
            where=context.dataset_where("path"),
        )
    if path.is_dir() and not allow_dir:
        raise DataError(f"{path} is a folder, expected a {what}", where=context.dataset_where("path"))
    return path


def raising_report(path: Path):
    """A `check`-style reporter (`report(code, message, hint=...)`) that raises the first
    problem as a DataError at `path`, so `plan` can describe data with `check`'s own probes."""

    def report(code: str, message: str, *args, hint=None, **kwargs):
        raise DataError(message, hint=hint, where=str(path))

    return report


def stat_key(path: Path) -> tuple:
    stat = path.stat()
    return (str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def freeze(value: Any) -> Any:
    """Make every NumPy array inside (dicts, lists, tuples) read-only."""
    import numpy as np

    if isinstance(value, np.ndarray):
        value.setflags(write=False)
    elif isinstance(value, dict):
        for item in value.values():
            freeze(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            freeze(item)
    return value


def nbytes(value: Any) -> int:
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, dict):
        return sum(nbytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(nbytes(v) for v in value)
    return 0


def cached(key: Hashable, compute: Callable[[], Any]) -> Any:
    """Return the cached value for `key`, computing (and freezing) it on a miss.

    A small LRU bounded by entry count and by the bytes of the arrays it holds.
    """
    with _CACHE_LOCK:
        if key in _CACHE:
            _CACHE.move_to_end(key)
            return _CACHE[key][0]
    value = freeze(compute())
    size = nbytes(value)
    with _CACHE_LOCK:
        _CACHE[key] = (value, size)
        while _CACHE and (len(_CACHE) > CACHE_ENTRIES or sum(s for _, s in _CACHE.values()) > CACHE_BYTES):
            _CACHE.popitem(last=False)
    return value


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()
