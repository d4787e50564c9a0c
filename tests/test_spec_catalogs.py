"""The committed name lists (spec/*.json) are what `python -m polytask.compiler.catalogs`
generates from the installed libraries, and `check` reads them without importing those."""
from __future__ import annotations

import pytest

from polytask.compiler import catalogs
from polytask.spec.catalogs import catalog

LIBRARIES = {"keras_layers": "keras", "keras_applications": "keras", "tfds_builders": "tensorflow_datasets"}


@pytest.mark.parametrize("kind", sorted(catalogs.GENERATORS))
def test_committed_catalog_is_current(kind):
    pytest.importorskip(LIBRARIES[kind])
    fresh = catalogs.GENERATORS[kind]()
    committed = catalog(kind)
    if fresh["generated_from"] != committed["generated_from"]:
        pytest.skip(f"installed {fresh['generated_from']}, catalog from {committed['generated_from']}")
    assert fresh == committed, f"stale: run python -m polytask.compiler.catalogs --only {kind}"


def test_catalogs_hold_what_check_relies_on():
    layers = catalog("keras_layers")["names"]
    assert layers["LSTM"]["required"] == ["units"] and layers["LSTM"]["inputs"] == "one"
    assert layers["MultiHeadAttention"]["inputs"] == "self_attention"
    assert layers["Concatenate"]["inputs"] == "several"
    assert {"ResNet50", "MobileNetV3Small"} <= set(catalog("keras_applications")["names"])
    assert {"mnist", "omniglot"} <= set(catalog("tfds_builders")["names"])
