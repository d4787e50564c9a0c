"""python source: user code only with allow_code, and its output validated."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import load
from polytask.errors import DataError

MODULE = '''
import numpy as np

def good():
    return {"x": np.arange(20.0).reshape(10, 2), "y": np.arange(10) % 2}

def ragged():
    return {"x": np.zeros((10, 2)), "y": np.zeros(9)}

def not_a_mapping():
    return [1, 2, 3]

def fails():
    raise RuntimeError("database offline")

not_callable = 3


class FrameLike:
    """Quacks like a pandas DataFrame: .items() yields (column, values)."""

    def items(self):
        return iter([("x", np.arange(4.0)), ("y", np.array([0, 1, 0, 1]))])


def frame():
    return FrameLike()
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    (tmp_path / "userdata_mod.py").write_text(MODULE)
    yield "userdata_mod"
    import sys

    sys.modules.pop("userdata_mod", None)


def test_refused_without_allow_code(tmp_path, user_module):
    with pytest.raises(DataError, match="runs Python code") as info:
        load(tmp_path, {"source": "python", "callable": f"{user_module}:good"})
    assert "--allow-code" in info.value.hint
    import sys

    assert user_module not in sys.modules  # nothing was imported


def test_loads_with_allow_code_from_the_spec_folder(tmp_path, user_module):
    table = load(tmp_path, {"source": "python", "callable": f"{user_module}:good"}, allow_code=True)
    assert table.num_rows == 10
    assert table.info["y"].categorical and table.info["y"].num_classes == 2
    assert np.array_equal(table.features(None, targets={"y"})[3], [6.0, 7.0])


def test_opt_in_recorded_on_the_loaded_spec_counts(tmp_path, user_module):
    from data_support import loaded_spec
    from polytask.compiler.data import load_table

    loaded = loaded_spec(tmp_path, {"d": {"source": "python", "callable": f"{user_module}:good"}})
    with pytest.raises(DataError, match="off by default"):
        load_table("d", loaded.spec.datasets["d"], loaded)
    loaded.allow_code = True  # what load_spec(..., allow_code=True) records
    assert load_table("d", loaded.spec.datasets["d"], loaded).num_rows == 10


def test_dataframe_like_results(tmp_path, user_module):
    table = load(tmp_path, {"source": "python", "callable": f"{user_module}:frame"}, allow_code=True)
    assert list(table.columns) == ["x", "y"] and table.num_rows == 4


@pytest.mark.parametrize(
    "attr, message",
    [
        ("ragged", "different numbers of rows"),
        ("not_a_mapping", "not a mapping"),
        ("fails", "raised RuntimeError: database offline"),
        ("not_callable", "is not callable"),
        ("missing", "has no attribute 'missing'"),
    ],
)
def test_bad_callables(tmp_path, user_module, attr, message):
    with pytest.raises(DataError, match=message):
        load(tmp_path, {"source": "python", "callable": f"{user_module}:{attr}"}, allow_code=True)


def test_unknown_module(tmp_path):
    with pytest.raises(DataError, match="cannot import module 'no_such_module_xyz'"):
        load(tmp_path, {"source": "python", "callable": "no_such_module_xyz:f"}, allow_code=True)
