"""Names that other libraries define, committed as data so `polytask check` needs none of them.

`polytask check` validates `keras: {layer: NAME}`, `keras_application: {name: NAME}` and
`source: tfds` builder names without importing Keras, TensorFlow or TensorFlow Datasets. The
lists are JSON files next to this module, generated from the installed libraries by

    python -m polytask.compiler.catalogs          # all three; --only keras_layers ...

(`polytask.compiler.catalogs`, which imports those libraries), and committed. Each file
records the library version it was generated from.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from polytask.spec.suggest import did_you_mean

FOLDER = Path(__file__).resolve().parent
FILES = {
    "keras_layers": "keras_layers.json",
    "keras_applications": "keras_applications.json",
    "tfds_builders": "tfds_builders.json",
}


@lru_cache(maxsize=None)
def catalog(kind: str) -> dict:
    """{"generated_from": "...", "names": {name: facts}} for one kind of FILES."""
    return json.loads((FOLDER / FILES[kind]).read_text())


def names(kind: str) -> dict:
    return catalog(kind)["names"]


def unknown(kind: str, noun: str, name: str) -> str:
    """The message for a name the catalog lacks: `unknown Keras layer 'LTSM' (did you mean 'LSTM'?)`."""
    data = catalog(kind)
    return (f"unknown {noun} {name!r}{did_you_mean(name, data['names'])}; names are checked against "
            f"{data['generated_from']} (spec/{FILES[kind]})")
