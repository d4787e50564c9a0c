"""sklearn source: bundled data sets, their columns, and describe() agreeing with load()."""
from __future__ import annotations

import numpy as np
import pytest

from data_support import describe, load

CLASSES = {"digits": 10, "iris": 3, "wine": 3, "breast_cancer": 2}


@pytest.mark.parametrize("name", ["digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud"])
def test_bundled_sets_load_and_describe_matches(tmp_path, name):
    dataset = {"source": "sklearn", "name": name}
    table = load(tmp_path, dataset)
    assert table.feature_columns == ["x"]
    assert table.info == describe(tmp_path, dataset)
    for column, info in table.info.items():  # the static metadata matches the real arrays
        assert table.columns[column].shape[1:] == info.shape, column
    target = table.info["target"]
    if name in CLASSES:
        assert target.categorical and target.num_classes == CLASSES[name]
        assert table.columns["target"].max() == CLASSES[name] - 1
        assert len(table.class_names) == CLASSES[name]
    else:
        assert not target.categorical and target.dtype == "float32"


def test_linnerud_targets_by_name(tmp_path):
    table = load(tmp_path, {"source": "sklearn", "name": "linnerud"})
    assert table.columns["target"].shape == (20, 3)
    assert np.array_equal(table.columns["Waist"], table.columns["target"][:, 1])
    assert table.features(None, targets={"Weight", "Waist", "Pulse"}).shape == (20, 3)


def test_digits_image_column(tmp_path):
    table = load(tmp_path, {"source": "sklearn", "name": "digits"})
    assert table.columns["image"].shape == (1797, 8, 8, 1)
    assert np.array_equal(table.columns["image"].reshape(1797, 64), table.columns["x"])
