"""csv source: typed columns, missing cells, and errors that point at file:line:column."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load
from polytask.errors import DataError


def _csv(tmp_path, text, name="data.csv"):
    (tmp_path / name).write_text(text)
    return {"source": "csv", "path": name, "split": {"train": 0.5, "test": 0.5}}


def test_columns_types_and_missing_cells(tmp_path):
    dataset = _csv(tmp_path, "a,b,label,score\n1.5,2,0,0.5\n-2,3,2,\n0.25,4,,1\n3,5,1,2\n")
    table = load(tmp_path, dataset)
    assert table.num_rows == 4
    assert table.columns["a"].dtype == np.float32
    assert table.columns["label"].tolist() == [0, 2, -1, 1]  # empty label -> -1 (masked)
    assert np.isnan(table.columns["score"][1])  # empty float -> NaN
    info = table.info
    assert info["label"].categorical and info["label"].num_classes == 3 and info["label"].missing == 1
    assert info["b"].categorical and info["b"].num_classes == 6  # integer-valued: could be classes
    assert not info["a"].categorical and info["a"].dtype == "float32"
    assert info["score"].missing == 1 and info["score"].shape == ()
    assert describe(tmp_path, dataset) == info
    # default input = every column that is not a target
    assert table.features(None, targets={"label", "score"}).shape == (4, 2)


def test_declared_features_and_quoting(tmp_path):
    dataset = _csv(tmp_path, 'x1;"x 2";y\n1;2;0\n3;4;1\n', name="semi.csv")
    dataset.update(delimiter=";", features=["x 2"])
    table = load(tmp_path, dataset)
    assert table.features(None, targets={"y"}).tolist() == [[2.0], [4.0]]


def test_byte_order_mark_and_spaces(tmp_path):
    (tmp_path / "bom.csv").write_bytes("\ufeffa, b\n 1 , 2\n3,4\n".encode("utf-8"))
    table = load(tmp_path, {"source": "csv", "path": "bom.csv"})
    assert list(table.columns) == ["a", "b"]
    assert table.columns["a"].tolist() == [1, 3]


def test_non_numeric_cell_names_line_and_column(tmp_path):
    dataset = _csv(tmp_path, "a,b\n1,2\n3,4\n5,oops\n")
    with pytest.raises(DataError) as info:
        load(tmp_path, dataset)
    error = info.value
    assert error.where.endswith("data.csv:4:2")
    assert "column 'b'" in error.message and "'oops'" in error.message
    assert "numbers" in error.hint


def test_ragged_row_empty_file_and_header_only(tmp_path):
    with pytest.raises(DataError, match="2 field") as info:
        load(tmp_path, _csv(tmp_path, "a,b,c\n1,2,3\n\n4,5\n"))
    assert info.value.where.endswith(":4")
    with pytest.raises(DataError, match="empty"):
        load(tmp_path, _csv(tmp_path, "", name="empty.csv"))
    with pytest.raises(DataError, match="no data rows"):
        load(tmp_path, _csv(tmp_path, "a,b\n", name="header.csv"))
    with pytest.raises(DataError, match="appears twice") as info:
        load(tmp_path, _csv(tmp_path, "a,b,a\n1,2,3\n", name="dup.csv"))
    assert info.value.where.endswith("dup.csv:1:3")
    with pytest.raises(DataError, match="infinite"):
        load(tmp_path, _csv(tmp_path, "a\n1\ninf\n", name="inf.csv"))


def test_missing_file_and_missing_columns(tmp_path):
    with pytest.raises(DataError, match="csv file not found") as info:
        load(tmp_path, {"source": "csv", "path": "nope.csv"})
    assert "spec file's folder" in info.value.hint
    dataset = _csv(tmp_path, "alpha,beta\n1,2\n3,4\n")
    dataset["features"] = ["alpah"]
    with pytest.raises(DataError, match="feature column 'alpah'") as info:
        load(tmp_path, dataset)
    assert "did you mean 'alpha'" in info.value.hint
    table = load(tmp_path, _csv(tmp_path, "alpha,beta\n1,2\n3,4\n", name="ok.csv"))
    with pytest.raises(DataError, match="task 't1' uses column 'gamma'"):
        table.column("gamma", task="t1")


def test_not_utf8(tmp_path):
    (tmp_path / "latin.csv").write_bytes("a,b\n1,\xe9\n".encode("latin-1"))
    with pytest.raises(DataError, match="not UTF-8"):
        load(tmp_path, {"source": "csv", "path": "latin.csv"})


def test_edited_file_is_read_again(tmp_path):
    import os

    dataset = _csv(tmp_path, "a\n1\n2\n")
    assert load(tmp_path, dataset).num_rows == 2
    path = tmp_path / "data.csv"
    path.write_text("a\n1\n2\n3\n4\n")
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    assert load(tmp_path, dataset).num_rows == 4


def test_missing_cell_beside_ones_stays_missing(tmp_path):
    # Found by the round-trip property: a column of 1s with an empty cell is a label column
    # with one missing label, not the +-1 numbers that an npz array of -1/1 would be.
    table = load(tmp_path, _csv(tmp_path, "a,b\n0.5,\n0.25,1\n"))
    assert table.columns["b"].dtype == np.int64
    assert table.columns["b"].tolist() == [-1, 1]
    assert table.info["b"].missing == 1


# ---------------------------------------------------------------- property tests

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_cell = st.one_of(
    st.none(),
    st.integers(min_value=-5, max_value=2000),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, width=32),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(2, 4).flatmap(lambda width: st.lists(st.lists(_cell, min_size=width, max_size=width), min_size=2, max_size=12)))
def test_numbers_round_trip(tmp_path, rows):
    # (2+ columns: in a one-column file an empty cell is a blank line, which csv readers skip)
    width = len(rows[0])
    text = ",".join(f"c{i}" for i in range(width)) + "\n"
    text += "".join(",".join("" if v is None else repr(v) for v in row) + "\n" for row in rows)
    (tmp_path / "p.csv").write_text(text)
    table = load(tmp_path, {"source": "csv", "path": "p.csv", "split": {"train": 1.0, "test": 0.0}})
    for i in range(width):
        column, values = table.columns[f"c{i}"], [row[i] for row in rows]
        known = [v for v in values if v is not None]
        if column.dtype == np.int64:
            assert table.info[f"c{i}"].categorical
            assert all(float(v).is_integer() and 0 <= v < 1000 for v in known)
            assert column.tolist() == [-1 if v is None else int(v) for v in values]
        else:
            assert column.dtype == np.float32
            for got, want in zip(column, values):
                assert np.isnan(got) if want is None else np.isclose(got, np.float32(want), rtol=1e-6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=200) | st.text(alphabet="0123456789.,-e\n\"; x", max_size=200).map(str.encode))
def test_any_bytes_load_or_fail_with_a_data_error(tmp_path, blob):
    (tmp_path / "fuzz.csv").write_bytes(blob)
    try:
        table = load(tmp_path, {"source": "csv", "path": "fuzz.csv", "split": {"train": 1.0, "test": 0.0}})
    except DataError as error:
        assert error.message and error.where
    else:
        assert table.num_rows >= 1
