"""npz source: arrays by name, input array, dtype rules, errors."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load
from polytask.errors import DataError


def test_arrays_become_columns(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 3, 2))
    np.savez(tmp_path / "d.npz", inputs=x, label=np.arange(10) % 4, value=np.linspace(0, 1, 10))
    dataset = {"source": "npz", "path": "d.npz", "features": "inputs"}
    table = load(tmp_path, dataset)
    assert table.feature_columns == ["inputs"]
    assert table.columns["inputs"].shape == (10, 3, 2) and table.columns["inputs"].dtype == np.float32
    assert table.info["label"].categorical and table.info["label"].num_classes == 4
    assert not table.info["value"].categorical
    # one multi-dimensional input keeps its shape; several are flattened and concatenated
    assert table.features(None, targets={"label"}).shape == (10, 3, 2)
    assert table.features(["inputs", "value"], targets={"label"}).shape == (10, 7)
    assert describe(tmp_path, dataset) == table.info


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "d.npz", x=np.zeros((4, 2)), y=np.zeros(5))
    with pytest.raises(DataError, match="different numbers of rows"):
        load(tmp_path, {"source": "npz", "path": "d.npz"})
    with pytest.raises(DataError, match="input array 'inputs'") as info:
        load(tmp_path, {"source": "npz", "path": "d.npz", "features": "inputs"})
    assert "arrays are: x, y" in info.value.hint
    np.savez(tmp_path / "o.npz", x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(DataError, match="cannot be loaded"):
        load(tmp_path, {"source": "npz", "path": "o.npz"})
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="cannot read"):
        load(tmp_path, {"source": "npz", "path": "junk.npz"})
    np.savez(tmp_path / "s.npz", x=np.float32(3.0))
    with pytest.raises(DataError, match="scalar"):
        load(tmp_path, {"source": "npz", "path": "s.npz"})
