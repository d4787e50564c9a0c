"""Regenerate the committed name lists of `polytask.spec.catalogs` from the installed libraries.

    python -m polytask.compiler.catalogs                       # every list
    python -m polytask.compiler.catalogs --only tfds_builders  # one

Writes spec/keras_layers.json (every `keras.layers` class: how many inputs it takes, its
constructor arguments and which are required), spec/keras_applications.json (every
`keras.applications` backbone and its arguments) and spec/tfds_builders.json (every
TensorFlow Datasets builder name). Imports Keras and TensorFlow Datasets; `check` only reads
the files.
"""
from __future__ import annotations

import argparse
import inspect
import json

from polytask.spec.catalogs import FILES, FOLDER

# Layers called on (query, value) or [query, value]: in a layer list they attend to themselves.
SELF_ATTENTION = {"MultiHeadAttention", "GroupedQueryAttention", "GroupQueryAttention", "Attention",
                  "AdditiveAttention"}


def _arguments(cls) -> tuple[list[str], list[str]]:
    """(every keyword the constructor accepts, the required ones), following **kwargs up the MRO."""
    accepted, required, first = [], [], True
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            break
        takes_more = False
        for p in parameters:
            if p.kind is p.VAR_KEYWORD:
                takes_more = True
            elif p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in accepted:
                accepted.append(p.name)
                if first and p.default is p.empty:
                    required.append(p.name)
        first = False
        if not takes_more:
            break
    return sorted(accepted), required


def keras_layers() -> dict:
    import keras
    from keras.src.layers.merging.base_merge import Merge

    out = {}
    for name in sorted(dir(keras.layers)):
        cls = getattr(keras.layers, name)
        if not (isinstance(cls, type) and issubclass(cls, keras.layers.Layer)):
            continue
        if name in SELF_ATTENTION:
            inputs = "self_attention"
        elif issubclass(cls, Merge):
            inputs = "several"
        else:
            inputs = "one"
        accepted, required = _arguments(cls)
        out[name] = {"inputs": inputs, "arguments": accepted, "required": required}
    return {"generated_from": f"keras {keras.__version__}", "names": out}


def keras_applications() -> dict:
    import keras

    out = {}
    for name in sorted(dir(keras.applications)):
        function = getattr(keras.applications, name)
        if name[:1].isupper() and callable(function):
            out[name] = {"arguments": sorted(inspect.signature(function).parameters)}
    return {"generated_from": f"keras {keras.__version__}", "names": out}


def tfds_builders() -> dict:
    import tensorflow_datasets as tfds

    return {"generated_from": f"tensorflow-datasets {tfds.__version__}",
            "names": {name: {} for name in sorted(tfds.list_builders(with_community_datasets=False))}}


GENERATORS = {"keras_layers": keras_layers, "keras_applications": keras_applications, "tfds_builders": tfds_builders}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=sorted(GENERATORS), nargs="+", help="lists to regenerate (default: all)")
    args = parser.parse_args(argv)
    for kind in args.only or GENERATORS:
        data = GENERATORS[kind]()
        (FOLDER / FILES[kind]).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"wrote {len(data['names'])} names ({data['generated_from']}) to spec/{FILES[kind]}")


if __name__ == "__main__":
    main()
