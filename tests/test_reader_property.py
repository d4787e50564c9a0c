"""Property-based tests of the csv, npz and image-folder readers: random bytes and random
well-formed-but-odd files end in success or in a PolytaskError that says where (the file,
with a line where there is one), never a traceback, a warning or a hang; and `check`'s data
pass on the same file never crashes (no PT900) and agrees with the loader on whether it reads.

Case counts are bounded (settings below) so the fast tier stays fast; raise them locally with
HYPOTHESIS_PROFILE=thorough.
"""
from __future__ import annotations

import csv
import io
import os
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from data_support import load
from polytask.errors import PolytaskError
from polytask.spec.checker import check_source

settings.register_profile("fast", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("thorough", max_examples=1000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "fast")
CASES = settings.get_profile(PROFILE).max_examples


def outcome(folder: Path, dataset: dict, data_file: str):
    """Load the dataset as `train` does and check it as `check` does; returns (loaded, check errors)."""
    error = None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a numpy RuntimeWarning on odd data is a bug too
        try:
            load(folder, dataset)
        except PolytaskError as exc:
            error = exc
    if error is not None:
        assert error.message and "Traceback" not in str(error)
        assert error.where, f"no position in: {error}"
        assert data_file in error.where or data_file in error.message, str(error)
    spec = ("polytask: 1\nname: prop\ndatasets:\n  d: " + _flow(dataset) + "\n")
    result = check_source(spec, "spec.yaml", folder)
    assert all(d.code != "PT900" for d in result.diagnostics), [str(d) for d in result.diagnostics]
    return error is None, [d for d in result.diagnostics if d.is_error]


def _flow(dataset: dict) -> str:
    import json

    return json.dumps(dataset)  # JSON is YAML flow style


# --------------------------------------------------------------------------- csv

CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-10**40, 10**40).map(str),
    st.integers(0, 5).map(str),
    st.sampled_from(["", " ", "nan", "NaN", "inf", "-inf", "1e39", "-1e39", "1_000", "0x10", "1,5", "+3", " 2 ",
                     "1e-50", "١٢", "²", "True", '"4"', "\t7", "0.1.2", "−1", "∞"]),
    st.text(max_size=6),
)


@st.composite
def odd_csv(draw) -> tuple[bytes, str]:
    width = draw(st.integers(1, 4))
    header = draw(st.lists(st.one_of(st.sampled_from(["a", "b", "label", " a ", "", "é", "a,b", 'q"'] ),
                                     st.text(min_size=1, max_size=5)), min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(CELLS, min_size=width - 1, max_size=width + 1), max_size=6))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator=draw(st.sampled_from(["\n", "\r\n"])))
    writer.writerow(header)
    writer.writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()):
        text = "\ufeff" + text
    if draw(st.booleans()):
        text = "\n" + text + "\n\n"
    return text.encode("utf-8"), delimiter


@settings(parent=settings.get_profile(PROFILE))
@given(st.binary(max_size=300))
def test_csv_reader_on_random_bytes(data):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "t.csv").write_bytes(data)
        outcome(Path(folder), {"source": "csv", "path": "t.csv"}, "t.csv")


@settings(parent=settings.get_profile(PROFILE))
@given(odd_csv(), st.sampled_from([",", ";", "\t"]))
def test_csv_reader_on_odd_files_agrees_with_check(file, read_with):
    data, _ = file
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "t.csv").write_bytes(data)
        loaded, errors = outcome(Path(folder), {"source": "csv", "path": "t.csv", "delimiter": read_with}, "t.csv")
        if not loaded:  # what train refuses, check refuses too (the reverse need not hold: a
            assert errors, data  # check reads a bounded sample, train reads everything)


# --------------------------------------------------------------------------- npz

DTYPES = st.sampled_from(["float16", "float32", "float64", "int8", "int64", "uint64", "bool", "complex64",
                          "U3", "S2", "datetime64[s]", "V4"])


@st.composite
def odd_npz(draw) -> bytes:
    arrays = {}
    for _ in range(draw(st.integers(0, 3))):
        name = draw(st.sampled_from(["x", "y", "label", "é", "a b", "x.npy"]))
        dtype = draw(DTYPES)
        shape = tuple(draw(st.lists(st.integers(0, 3), max_size=3)))
        kind = np.dtype(dtype).kind
        size = int(np.prod(shape)) if shape else 1
        if kind == "f":
            raw = draw(st.lists(st.floats(width=64, allow_nan=True, allow_infinity=True), min_size=size,
                                max_size=size))
            with np.errstate(over="ignore"):
                array = np.asarray(raw, dtype=np.float64).astype(dtype).reshape(shape)
        elif kind in "iub":
            info = np.iinfo(dtype) if kind != "b" else None
            low, high = (0, 1) if info is None else (int(info.min), int(info.max))
            array = np.asarray(draw(st.lists(st.integers(low, high), min_size=size, max_size=size)),
                               dtype=dtype).reshape(shape)
        else:
            array = np.zeros(shape, dtype=dtype)
        arrays[name] = array
    out = io.BytesIO()
    np.savez(out, **arrays)
    data = out.getvalue()
    if draw(st.booleans()) and data:  # truncated
        data = data[: draw(st.integers(0, len(data)))]
    return data


@settings(parent=settings.get_profile(PROFILE))
@given(st.one_of(st.binary(max_size=300), odd_npz()))
def test_npz_reader_on_random_and_odd_files(data):
    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "d.npz").write_bytes(data)
        outcome(Path(folder), {"source": "npz", "path": "d.npz"}, "d.npz")


# --------------------------------------------------------------------------- image folders


def _png(size, mode) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new(mode, size).save(out, format="PNG")
    return out.getvalue()


IMAGE_BYTES = st.one_of(
    st.binary(max_size=64),
    st.builds(_png, st.tuples(st.integers(1, 5), st.integers(1, 5)), st.sampled_from(["L", "RGB", "RGBA", "P", "1", "LA",
                                                                                      "I;16"])),
    st.builds(lambda size: _png(size, "L")[: size[0] * 7], st.tuples(st.integers(1, 5), st.integers(1, 5))),
)


@st.composite
def odd_tree(draw) -> dict[str, bytes]:
    files = {}
    for _ in range(draw(st.integers(0, 6))):
        parts = draw(st.lists(st.sampled_from(["cat", "dog", ".hidden", "__MACOSX", "é", "a b"]), max_size=2))
        name = draw(st.sampled_from(["0.png", "1.PNG", "2.jpg", "3.gif", "x.txt", ".4.png"]))
        files["/".join([*parts, name])] = draw(IMAGE_BYTES)
    return files


@settings(parent=settings.get_profile(PROFILE))
@given(odd_tree(), st.booleans())
def test_image_folder_reader_on_odd_trees_and_zips(files, as_zip):
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder, "imgs")
        root.mkdir()
        for name, data in files.items():
            path = root / name
            if path.parent.exists() and not path.parent.is_dir():
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():
                continue
            path.write_bytes(data)
        target = "imgs"
        if as_zip:
            with zipfile.ZipFile(Path(folder, "imgs.zip"), "w") as archive:
                for name, data in files.items():
                    archive.writestr(name, data)
            target = "imgs.zip"
        dataset = {"source": "image_folder", "path": target, "image_size": [4, 4],
                   "split": {"train": 0.5, "test": 0.5}}
        outcome(Path(folder), dataset, target)


def test_case_counts_are_bounded_in_the_fast_tier():
    assert PROFILE != "fast" or CASES <= 50
    pytest.importorskip("hypothesis")
