"""The spec's static data facts agree with what the data layer actually provides.

`polytask check` must not import the compiler, so polytask.spec.catalog repeats what the
sklearn and synthetic sources produce (column names, shapes, classes). This test compares
the two, so a change in one without the other fails here rather than in a user's run.
"""
from __future__ import annotations

import pytest

from polytask.spec.catalog import SKLEARN, static_facts
from polytask.spec.models import SklearnDataset, SyntheticDataset

data = pytest.importorskip("polytask.compiler.data")

DATASETS = [SklearnDataset(source="sklearn", name=name) for name in SKLEARN] + [
    SyntheticDataset.model_validate({"source": "synthetic", "generator": {"kind": "sinusoid", "tasks": 3}}),
    SyntheticDataset.model_validate({"source": "synthetic", "generator": {"kind": "gradnorm_toy", "tasks": 2,
                                                                         "input_dim": 7, "output_dim": 3}}),
    SyntheticDataset.model_validate({"source": "synthetic", "generator": {"kind": "mmoe", "tasks": 4, "input_dim": 5}}),
]


@pytest.mark.parametrize("dataset", DATASETS, ids=lambda d: getattr(d, "name", None) or d.generator.kind)
def test_static_facts_match_the_data_layer(dataset):
    described = data.describe_table("d", dataset, None)
    facts = static_facts(dataset)
    assert set(facts.columns) == set(described)
    for name, info in described.items():
        column = facts.columns[name]
        assert tuple(column.shape) == tuple(info.shape), name
        assert bool(column.categorical) == bool(info.categorical), name
        assert column.num_classes == info.num_classes, name


def test_sklearn_row_counts_match_scikit_learn():
    sklearn_datasets = pytest.importorskip("sklearn.datasets")
    for name, meta in SKLEARN.items():
        bunch = getattr(sklearn_datasets, f"load_{name}")()
        assert bunch.data.shape == (meta["rows"], meta["features"]), name


def test_class_split_sizes_match_the_data_layer():
    from polytask.compiler.data.table import split_indices
    from polytask.compiler.meta.families.classes import ClassSplit
    from polytask.spec.splits import split_sizes

    for count in range(0, 60):
        for fractions in [(0.7, 0.1, 0.2), (1.0, 0.0, 0.0), (0.34, 0.33, 0.33), (0.9, 0.05, 0.05), (0.5, 0.0, 0.5)]:
            split = ClassSplit(train=fractions[0], validation=fractions[1], test=fractions[2])
            expected = [len(v) for v in split_indices(count, split, seed=0).values()]
            assert split_sizes(count, list(fractions)) == expected, (count, fractions)
