"""Cheap data checks: ask each dataset's source descriptor for its facts, cached per process.

What a source reads (a csv's header and a bounded sample of rows, an npz's .npy headers,
an image tree's listing, a tfrecord glob's matches) is the business of its descriptor in
`polytask.compiler.data.sources` (`Source.facts`); this module only runs those probes,
reports what they find at `datasets.<name>.path`, and caches the result. Skipped entirely
with `check_data=False` (`--no-data`): then only `Source.static_facts` is used.
"""
from __future__ import annotations

import copy
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Optional

from polytask.errors import special_file
from polytask.spec.facts import Facts
from polytask.spec.registry import SOURCES

Report = Callable[..., None]  # report(code, message, path, hint=None)


_CACHE: "OrderedDict[tuple, tuple[Facts, list]]" = OrderedDict()
CACHE_ENTRIES = 64


def static_facts(dataset) -> Facts:
    """Facts known from the spec alone (no file is read)."""
    return SOURCES.get(dataset.source).static_facts(dataset)


def probe(name: str, dataset, resolve: Callable[[str], Path], report: Report) -> Facts:
    """Facts for `datasets.<name>`, reporting missing or unreadable data through `report`.

    Results are cached per process by (dataset settings, resolved path, size, mtime), so
    checking many specs over the same files reads each file once; an edited file is re-read.
    Sources that read no file (`data_path` None) are not cached: their facts are cheap.
    """
    where = ("datasets", name, "path")
    source = SOURCES.get(dataset.source)
    key = _cache_key(dataset, source.data_path(dataset), resolve)
    if key is not None and key in _CACHE:
        _CACHE.move_to_end(key)
        facts, issues = _CACHE[key]
        for code, message, hint in issues:
            report(code, message, where, hint=hint)
        return copy.deepcopy(facts)
    issues: list = []

    def record(code, message, hint=None):
        issues.append((code, message, hint))
        report(code, message, where, hint=hint)

    facts = source.facts(dataset, resolve, record)
    if key is not None:
        _CACHE[key] = (copy.deepcopy(facts), issues)
        while len(_CACHE) > CACHE_ENTRIES:
            _CACHE.popitem(last=False)
    return facts


def _cache_key(dataset, data_path: Optional[str], resolve) -> Optional[tuple]:
    if data_path is None:
        return None
    try:
        path = resolve(data_path)
        stat = path.stat()
    except (OSError, ValueError):
        return None  # missing files are cheap to re-check and must be reported each time
    return (dataset.model_dump_json(), str(path.resolve()), stat.st_size, stat.st_mtime_ns)


def readable_file(value: str, base_dir: Path, what: str, report: Report) -> None:
    """PT301/PT306 when the file `value` names (relative paths: against `base_dir`) cannot be read."""
    path = Path(value).expanduser()
    path = path if path.is_absolute() else Path(base_dir) / path
    if not path.is_file() or special_file(path):
        missing(report, path, what)


def missing(report: Report, path: Path, what: str) -> None:
    """PT301 for a data file that is not there, or is a folder (or a FIFO, device, socket) where
    a file belongs."""
    problem = special_file(path)
    if problem:
        report("PT306", problem, hint=f"point `path` at the {what} itself (polytask reads regular files only)")
        return
    if path.is_dir():
        report("PT301", f"{path} is a folder; `path` must be the {what} itself",
               hint=f"point `path` at the {what} inside it")
        return
    report("PT301", f"{what} not found: {path}", hint="relative paths are resolved against the spec file's folder")
