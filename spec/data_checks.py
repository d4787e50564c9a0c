"""Cheap data checks: read headers and listings, never decode the data itself.

For each dataset that lives in files, `probe` checks the file or folder exists and learns
what `polytask.spec.catalog.Facts` the rules need: a csv's header (and the kind of each
column from a bounded sample of rows), an npz's array names, shapes and dtypes (from the
.npy headers inside the zip), an image tree's classes and images per class (from the
listing), a tfrecord glob's matches. Skipped entirely with `check_data=False` (`--no-data`).

The layout rules (numeric csv cells, label-like integers, an image zip's lone wrapping
folder) are those of `polytask.compiler.data`; see docs/data-sources.md.
"""
from __future__ import annotations

import copy
import csv
import glob
import os
import zipfile
from collections import OrderedDict
from pathlib import Path, PurePosixPath
from typing import Callable, Optional

from polytask.spec.catalog import Column, Facts, image_shape, static_facts

CSV_SAMPLE_ROWS = 20_000
NPZ_READ_LIMIT = 4_000_000  # bytes of a 1-D integer array read to count its classes
MAX_CLASSES = 1000

Report = Callable[..., None]  # report(code, message, path, hint=None)


_CACHE: "OrderedDict[tuple, tuple[Facts, list]]" = OrderedDict()
CACHE_ENTRIES = 64


def probe(name: str, dataset, resolve: Callable[[str], Path], report: Report) -> Facts:
    """Facts for `datasets.<name>`, reporting missing or unreadable data through `report`.

    Results are cached per process by (dataset settings, resolved path, size, mtime), so
    checking many specs over the same files reads each file once; an edited file is re-read.
    """
    where = ("datasets", name, "path")
    checker = _PROBES.get(dataset.source)
    if checker is None:
        return static_facts(dataset)
    key = _cache_key(dataset, resolve)
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        facts, issues = _CACHE[key]
        for code, message, hint in issues:
            report(code, message, where, hint=hint)
        return copy.deepcopy(facts)
    issues: list = []

    def record(code, message, path, hint=None):
        issues.append((code, message, hint))
        report(code, message, path, hint=hint)

    facts = checker(name, dataset, resolve, record, where)
    if key is not None:
        _CACHE[key] = (copy.deepcopy(facts), issues)
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return facts


def _cache_key(dataset, resolve) -> Optional[tuple]:
    try:
        path = resolve(dataset.path)
        stat = path.stat()
    except (OSError, ValueError):
        return None  # missing files are cheap to re-check and must be reported each time
    return (dataset.model_dump_json(), str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def _missing(report: Report, where, path: Path, what: str) -> None:
    """PT301 for a data file that is not there, or is a folder where a file belongs."""
    if path.is_dir():
        report("PT301", f"{path} is a folder; `path` must be the {what} itself", where,
               hint=f"point `path` at the {what} inside it")
        return
    report("PT301", f"{what} not found: {path}", where,
           hint="relative paths are resolved against the spec file's folder")


# --------------------------------------------------------------------------- csv


def _cell_kind(cell: str):
    """(is a number or empty, its integer value or None, is empty)."""
    text = cell.strip()
    if not text or text.lower() == "nan":
        return True, None, True
    try:
        value = float(text)
    except ValueError:
        return False, None, False
    if value != value or value in (float("inf"), float("-inf")):
        return False, None, False
    return True, (int(value) if value.is_integer() else None), False


def _probe_csv(name, dataset, resolve, report, where) -> Facts:
    path = resolve(dataset.path)
    if not path.is_file():
        _missing(report, where, path, "csv file")
        return Facts()
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=dataset.delimiter)
            header = next(reader, None)
            if not header:
                report("PT306", f"{path.name} is empty; a csv needs a header row", where)
                return Facts()
            header = [h.strip() for h in header]
            if any(not h for h in header) or len(set(header)) != len(header):
                report("PT306", f"{path.name}: the header has an empty or repeated column name", where,
                       hint="name every column once in the first row")
                return Facts()
            integral = [True] * len(header)
            low = [0] * len(header)
            high = [-1] * len(header)
            rows = 0
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    report("PT306", f"{path.name}:{line_no}: {len(row)} fields, the header has {len(header)}",
                           where, hint=f"is the delimiter {dataset.delimiter!r} right?")
                    return Facts()
                rows += 1
                for i, cell in enumerate(row):
                    number, integer, empty = _cell_kind(cell)
                    if not number:
                        report("PT306", f"{path.name}:{line_no}: column '{header[i]}' holds {cell.strip()!r}, "
                               "not a number", where, hint="csv cells must be numbers or empty (a missing value)")
                        return Facts()
                    if empty:
                        continue
                    if integer is None:
                        integral[i] = False
                    else:
                        low[i] = min(low[i], integer)
                        high[i] = max(high[i], integer)
                if rows >= CSV_SAMPLE_ROWS:
                    break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report("PT306", f"cannot read {path.name}: {exc}", where)
        return Facts()
    if rows == 0:
        report("PT306", f"{path.name} has a header but no rows", where, hint="add data rows below the header")
        return Facts()  # column facts from no rows would only add false follow-up errors
    columns = {}
    for i, column in enumerate(header):
        categorical = integral[i] and low[i] >= 0 and high[i] < MAX_CLASSES and high[i] >= 0
        because = None
        if integral[i] and high[i] < 0 and low[i] >= 0:
            because = "no values (every cell is empty)"
        elif integral[i] and low[i] < 0:
            because = f"negative values (down to {low[i]})"
        elif integral[i] and high[i] >= MAX_CLASSES:
            because = f"values up to {high[i]} (at most {MAX_CLASSES} classes, 0..{MAX_CLASSES - 1})"
        columns[column] = Column((), categorical=categorical, num_classes=high[i] + 1 if categorical else None,
                                 dtype="int64" if categorical else "float32", not_labels_because=because)
    return Facts(columns=columns, default_features=None, rows=rows if rows < CSV_SAMPLE_ROWS else None)


# --------------------------------------------------------------------------- npz


def _npy_header(handle):
    import numpy as np

    version = np.lib.format.read_magic(handle)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(handle)
    return np.lib.format.read_array_header_2_0(handle)


def _probe_npz(name, dataset, resolve, report, where) -> Facts:
    path = resolve(dataset.path)
    if not path.is_file():
        _missing(report, where, path, "npz file")
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
                           "them would run code)", where, hint="save numbers or text arrays")
                    continue
                categorical, classes = None, None
                if dtype.kind == "f":
                    categorical = False
                elif dtype.kind in "US":
                    categorical = None
                elif dtype.kind in "iub" and len(shape) == 1:
                    info = archive.getinfo(member)
                    if info.file_size <= NPZ_READ_LIMIT:
                        import numpy as np

                        with archive.open(member) as handle:
                            values = np.lib.format.read_array(handle, allow_pickle=False)
                        present = values[values != -1] if values.size else values
                        top = int(present.max()) if present.size else -1
                        categorical = bool(present.size == 0 or (int(present.min()) >= 0 and top < MAX_CLASSES))
                        classes = top + 1 if categorical else None
                elif dtype.kind in "iub":
                    categorical = False
                kind = "string" if dtype.kind in "US" else ("float32" if dtype.kind == "f" else "int64")
                columns[array] = Column(tuple(int(d) for d in shape[1:]), categorical=categorical,
                                        num_classes=classes, dtype=kind)
                rows[array] = int(shape[0]) if shape else 0
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        report("PT306", f"cannot read {path.name} as an npz file: {exc}", where)
        return Facts()
    if not columns:
        report("PT306", f"{path.name} holds no arrays", where, hint="write it with numpy.savez(path, x=..., y=...)")
        return Facts()
    if len(set(rows.values())) > 1:
        listing = ", ".join(f"{k}: {v}" for k, v in rows.items())
        report("PT307", f"the arrays in {path.name} have different numbers of rows ({listing})", where,
               hint="every array needs one row per example (the same first dimension)")
    return Facts(columns=columns, default_features=[dataset.features], rows=max(rows.values()))


# --------------------------------------------------------------------------- image folders


def _ignored(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def list_images(path: Path, extensions) -> list[str]:
    """Relative POSIX paths of the images in a folder tree or zip (hidden and __MACOSX skipped)."""
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    if path.is_file():
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    else:
        names = []
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not _ignored(d)]
            relative = Path(folder).relative_to(path).parts
            names.extend("/".join((*relative, f)) for f in files)
    return [n for n in names if PurePosixPath(n).suffix.lower() in suffixes
            and not any(_ignored(p) for p in PurePosixPath(n).parts)]


def class_counts(images: list[str], class_depth: int) -> tuple[dict[str, int], list[str]]:
    """Images per class, and images that sit above the class folders."""
    parts = [PurePosixPath(m).parts for m in images]
    prefix = 0
    if len({p[0] for p in parts}) == 1 and all(len(p) >= class_depth + 2 for p in parts):
        prefix = 1  # a lone wrapping folder, as zips of a folder have
    counts: dict[str, int] = {}
    stray = []
    for member, member_parts in zip(images, parts):
        inner = member_parts[prefix:]
        if len(inner) < class_depth + 1:
            stray.append(member)
            continue
        key = "/".join(inner[:class_depth])
        counts[key] = counts.get(key, 0) + 1
    return counts, stray


def _probe_images(name, dataset, resolve, report, where) -> Facts:
    path = resolve(dataset.path)
    if not path.exists():
        _missing(report, where, path, "image folder or zip")
        return Facts()
    try:
        images = list_images(path, dataset.extensions)
    except (zipfile.BadZipFile, OSError) as exc:
        report("PT306", f"cannot read {path.name}: {exc}", where, hint="point `path` at a folder or a .zip")
        return Facts()
    if not images:
        report("PT306", f"no images ({', '.join(dataset.extensions)}) found in {path}", where,
               hint="point `path` at the folder (or .zip) whose subfolders are the classes")
        return Facts()
    counts, stray = class_counts(images, dataset.class_depth)
    if stray:
        report("PT306", f"image '{stray[0]}' in {path.name} is not inside {dataset.class_depth} level(s) of "
               f"class folders ({len(stray)} such image{'s' if len(stray) > 1 else ''})", where,
               hint="with class_depth N, images live at <root>/<level1>/.../<levelN>/<image>; "
               "fix the layout or `class_depth`")
    per_class = [counts[k] for k in sorted(counts)]
    columns = {
        "image": Column(image_shape(dataset), categorical=False, dtype="float32"),
        "label": Column((), categorical=True, num_classes=len(per_class), dtype="int64"),
    }
    return Facts(columns=columns, default_features=["image"], class_counts=per_class, rows=sum(per_class))


# --------------------------------------------------------------------------- tfrecord


def _probe_tfrecord(name, dataset, resolve, report, where) -> Facts:
    pattern = resolve(dataset.path)
    if any(ch in dataset.path for ch in "*?["):
        found = glob.glob(str(pattern))
    else:
        found = [str(pattern)] if pattern.is_file() else []
    if not found:
        report("PT301", f"no tfrecord file matches {pattern}", where,
               hint="relative paths are resolved against the spec file's folder")
    return static_facts(dataset)


_PROBES = {
    "csv": _probe_csv,
    "npz": _probe_npz,
    "image_folder": _probe_images,
    "tfrecord": _probe_tfrecord,
}
