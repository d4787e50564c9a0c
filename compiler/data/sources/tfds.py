"""`source: tfds`: any TensorFlow Datasets builder by name (`polytask[tfds]`).

    datasets:
      digits:
        source: tfds
        name: mnist                   # checked against spec/tfds_builders.json (did-you-mean)
        splits: {train: "train[:90%]", validation: "train[90%:]", test: test}
        features: [image]             # input feature paths; targets are feature paths too
        image_size: [28, 28]

Every leaf feature of the builder becomes a column named by its feature path (`label`,
`objects/area`, `attributes/Smiling`), so tasks pick targets and inputs by path. Images are
float32 in [0, 1], resized to `image_size` when it is given, one channel with `grayscale:
true`, three with `false` (as stored when unset), `invert` maps v -> 1 - v. `ClassLabel`
features are int64 class labels with the builder's `num_classes`; text is `string`; a
feature whose shape varies from example to example (and is not an image being resized) is
left out. `splits` maps polytask's train/validation/test onto TFDS split strings (slices
and `+` as TFDS writes them); without it every TFDS split is read and the `split:`
fractions cut the rows, as for other sources.

`download: true` lets TFDS download and prepare the data into `data_dir` (TFDS's default
folder, ~/tensorflow_datasets, when unset) as `tfds.builder(...).download_and_prepare()`
does; with `false` (the default) the data must already be prepared there, and polytask
never touches the network. `polytask check` validates the fields and the builder name
without importing TensorFlow; when the data is prepared, it also reads the features
(`<data_dir>/<name>/<version>/features.json`, plain JSON) to check targets and inputs.

A class-structured builder (Omniglot: `image`, `label` = the character, `alphabet`) feeds
`family: {source: classes}` when `image_size` and `grayscale` are set (so the episode shape
is known without reading the data); its `image` and `label` columns give the episodes.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, field_validator

from polytask.compiler.data.files import cached
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.errors import DataError
from polytask.spec.catalogs import names, unknown
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES
from polytask.spec.types import PositiveInt, StrictModel

INSTALL_HINT = "install the extra: pip install 'polytask[tfds]' (or pip install tensorflow-datasets)"
SPLITS = ("train", "validation", "test")


class TfdsSplits(StrictModel):
    """The TFDS split (or slice, `train[:80%]`, or sum, `train+test`) behind each polytask split."""

    train: str = Field("train", min_length=1, description="TFDS split for training.")
    validation: Optional[str] = Field(None, min_length=1, description="TFDS split for validation (early stopping).")
    test: Optional[str] = Field(None, min_length=1, description="TFDS split for the test report.")


class TfdsDataset(DatasetBase):
    """A TensorFlow Datasets builder; every leaf feature is a column named by its feature path."""

    source: Literal["tfds"] = Field(description="`tfds`")
    name: str = Field(description="The TFDS builder name (`mnist`, `omniglot`, ...).")
    config: Optional[str] = Field(None, min_length=1, description="The builder config (TFDS `name/config`).")
    version: Optional[str] = Field(None, pattern=r"^[0-9]+(\.([0-9]+|\*)){0,2}$",
                                   description="The dataset version (`3.0.0`, `3.*.*`); default: the newest.")
    data_dir: Optional[str] = Field(None, description="Where TFDS keeps prepared data; relative to the spec's folder. "
                                    "Default: TFDS's own (~/tensorflow_datasets or $TFDS_DATA_DIR).")
    splits: Optional[TfdsSplits] = Field(None, description="TFDS splits per polytask split; default: every TFDS "
                                         "split, cut by the `split:` fractions.")
    features: Optional[list[str]] = Field(None, min_length=1,
                                          description="Input feature paths; default: every feature no task predicts.")
    download: bool = Field(False, description="Let TFDS download and prepare the data (network); false: it must "
                           "already be prepared in `data_dir`.")
    limit: Optional[PositiveInt] = Field(None, description="Read at most this many examples of each TFDS split.")
    image_size: Optional[tuple[PositiveInt, PositiveInt]] = Field(None, description="[height, width] images are "
                                                                  "resized to; default: as stored.")
    grayscale: Optional[bool] = Field(None, description="Images with one channel (true) or three (false); "
                                      "default: as stored.")
    invert: bool = Field(False, description="Map image values v -> 1 - v.")

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in names("tfds_builders"):
            raise ValueError(unknown("tfds_builders", "TFDS builder", value))
        return value


def _tfds():
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataError("reading TensorFlow Datasets needs tensorflow-datasets, which is not installed",
                        hint=INSTALL_HINT) from None
    return tfds


def full_name(params) -> str:
    """`name/config:version`, as TFDS writes it."""
    return params.name + (f"/{params.config}" if params.config else "") + (f":{params.version}" if params.version else "")


def _leaves(features, prefix: str = "") -> dict:
    """{feature path: TFDS feature} of the leaves of a FeaturesDict."""
    import tensorflow_datasets as tfds

    out = {}
    for key, feature in features.items():
        path = f"{prefix}{key}"
        if isinstance(feature, tfds.features.FeaturesDict):
            out.update(_leaves(feature, f"{path}/"))
        else:
            out[path] = feature
    return out


def _read(params, context: SourceContext) -> tuple[dict, dict, dict, Optional[list]]:
    """(columns, column info overrides, rows of each polytask split or {}, label class names)."""
    import numpy as np
    import tensorflow as tf

    tfds = _tfds()
    where = context.dataset_where("name")
    data_dir = str(context.resolve_path(params.data_dir)) if params.data_dir else None
    try:
        builder = tfds.builder(full_name(params), data_dir=data_dir)
    except Exception as exc:  # TFDS raises DatasetNotFoundError, ValueError (config, version), ...
        raise DataError(f"TFDS cannot make builder {full_name(params)!r}: {' '.join(str(exc).split())[:400]}",
                        hint="check `name`, `config` and `version` against the TFDS catalog", where=where) from None
    if params.download:
        try:
            builder.download_and_prepare()
        except Exception as exc:
            raise DataError(f"TFDS could not download and prepare {full_name(params)}: {exc}", where=where) from None
    wanted = ({s: getattr(params.splits, s) for s in SPLITS if getattr(params.splits, s)}
              if params.splits is not None else {"all": "all"})
    leaves = _leaves(builder.info.features)
    images = {p for p, f in leaves.items() if isinstance(f, tfds.features.Image)}
    usable = {p for p, f in leaves.items()
              if (p in images and params.image_size) or all(d is not None for d in (f.shape or ()))}

    def prepare(example):
        flat = {}

        def walk(value, prefix=""):
            for key, item in value.items():
                if isinstance(item, dict):
                    walk(item, f"{prefix}{key}/")
                elif f"{prefix}{key}" in usable:
                    flat[f"{prefix}{key}"] = item

        walk(example)
        for path in images & set(flat):
            image = tf.cast(flat[path], tf.float32) / 255.0
            if params.grayscale is True and image.shape[-1] == 3:
                image = tf.image.rgb_to_grayscale(image)
            elif params.grayscale is False and image.shape[-1] == 1:
                image = tf.image.grayscale_to_rgb(image)
            if params.image_size:
                image = tf.image.resize(image, params.image_size, method="bilinear", antialias=True)
            flat[path] = 1.0 - image if params.invert else image
        return flat

    parts, rows, start = [], {}, 0
    for split, tfds_split in wanted.items():
        try:
            dataset = builder.as_dataset(split=tfds_split, shuffle_files=False)
        except Exception as exc:  # not prepared (AssertionError), unknown split (ValueError), ...
            text = " ".join(str(exc).split())[:400]
            hint = ("set `download: true` to let TFDS fetch it, or prepare it with `tfds build "
                    f"{full_name(params)}`" if "not found" in text.lower() or "prepare" in text.lower()
                    else f"TFDS splits of {params.name}: {', '.join(builder.info.splits) or 'unknown'}")
            raise DataError(f"TFDS cannot read split {tfds_split!r} of {full_name(params)}: {text}", hint=hint,
                            where=context.dataset_where("splits", split) if params.splits else where) from None
        if params.limit:
            dataset = dataset.take(params.limit)
        batches = list(tfds.as_numpy(dataset.map(prepare).batch(512)))
        if not batches:
            raise DataError(f"TFDS split {tfds_split!r} of {full_name(params)} has no examples", where=where)
        part = {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}
        count = len(next(iter(part.values())))
        rows[split] = np.arange(start, start + count, dtype=np.int64)
        start += count
        parts.append(part)
    columns = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    info, class_names = {}, None
    for path, feature in leaves.items():
        if path in columns and isinstance(feature, tfds.features.ClassLabel):
            info[path] = Column((), dtype="int64", categorical=True, num_classes=int(feature.num_classes))
            if path == "label":
                class_names = list(feature.names)
    return columns, info, ({} if params.splits is None else rows), class_names


def prepared_folder(params, resolve) -> Optional[Path]:
    """The folder of the prepared dataset (`<data_dir>/<name>[/<config>]/<version>`), if there is one.

    Without `version`, the newest version folder; `data_dir` defaults as in TFDS
    ($TFDS_DATA_DIR, else ~/tensorflow_datasets). Plain file-system reads, no TFDS."""
    if params.data_dir:
        root = resolve(params.data_dir)
    else:
        root = Path(os.environ.get("TFDS_DATA_DIR") or Path.home() / "tensorflow_datasets")
    base = root / params.name / (params.config or "")
    if params.version and "*" not in params.version:
        folder = base / params.version
        return folder if (folder / "features.json").is_file() else None
    pattern = re.compile("^" + (params.version or "*.*.*").replace(".", r"\.").replace("*", "[0-9]+") + "$")
    try:
        versions = [f for f in base.iterdir() if pattern.match(f.name) and (f / "features.json").is_file()]
    except OSError:
        return None
    return max(versions, key=lambda f: tuple(int(n) for n in f.name.split("."))) if versions else None


def _feature_columns(feature: dict, path: str, params, out: dict) -> bool:
    """Add the columns of one features.json entry to `out`; False for a feature kind not understood."""
    kind = feature.get("pythonClassName", "").rsplit(".", 1)[-1]
    if kind == "FeaturesDict":
        return all(_feature_columns(f, f"{path}{key}/", params, out)
                   for key, f in feature["featuresDict"]["features"].items())
    name = path.rstrip("/")
    if kind == "ClassLabel":
        out[name] = Column((), dtype="int64", categorical=True, num_classes=int(feature["classLabel"]["numClasses"]))
    elif kind == "Image":
        dims = [int(d) for d in feature["image"]["shape"]["dimensions"]]
        height_width = tuple(params.image_size) if params.image_size else tuple(dims[:2])
        channels = dims[2] if params.grayscale is None else (1 if params.grayscale else 3)
        if min(*height_width, channels) > 0:
            out[name] = Column((*height_width, channels), dtype="float32", categorical=False)
    elif kind == "Text":
        out[name] = Column((), dtype="string")
    elif kind in ("Tensor", "Scalar"):
        info = feature.get("tensor", feature.get("scalar", {}))
        dims = tuple(int(d) for d in info.get("shape", {}).get("dimensions", []))
        dtype = info.get("dtype", "")
        if any(d < 0 for d in dims):
            return True  # a shape that varies: left out of the table, as the loader does
        if dtype == "string":
            out[name] = Column(dims, dtype="string")
        elif dtype.startswith("float"):
            out[name] = Column(dims, dtype="float32", categorical=False)
        else:  # integers and booleans: whether they are labels depends on the values
            out[name] = Column(dims, dtype=None, categorical=None)
    else:
        return False
    return True


def probe_prepared(params, resolve) -> Facts:
    """The columns a prepared dataset's features.json describes, read as JSON (no TFDS, no TF);
    unknown (`Facts()`) when the data is not prepared here or a feature kind is not understood."""
    folder = prepared_folder(params, resolve)
    if folder is None:
        return Facts()
    try:
        features = json.loads((folder / "features.json").read_text())
    except (OSError, ValueError):
        return Facts()
    columns: dict = {}
    try:
        understood = _feature_columns(features, "", params, columns)
    except (KeyError, TypeError, ValueError):
        return Facts()
    return Facts(columns=columns) if understood else Facts()


@SOURCES.register
class Tfds(Source):
    """Any TensorFlow Datasets builder by name; columns are its features by feature path."""

    name = "tfds"
    Params = TfdsDataset
    default_input = "`features:` or all non-target features"
    other_columns = "one per leaf feature, by path (`label`, `objects/area`)"
    reads = "TensorFlow Datasets (extra `polytask[tfds]`)"
    column_noun = "feature"

    def reference_models(self):
        return [("`splits`", TfdsSplits)]

    def data_path(self, params):
        return None

    def facts(self, params, resolve, report) -> Facts:
        return probe_prepared(params, resolve)

    def spec_problems(self, params):
        problems = []
        if params.splits is not None and "split" in params.model_fields_set:
            problems.append(("`splits` names the TFDS split of each polytask split, so the `split` fractions "
                             "would be ignored", ("split",), "remove `split`, or remove `splits` to cut all rows "
                             "by fractions"))
        return problems

    def episode_image_shape(self, params) -> Optional[tuple]:
        if params.image_size is None or params.grayscale is None:
            return None
        return (*params.image_size, 1 if params.grayscale else 3)

    def episode_hint(self) -> str:
        return "give the tfds dataset `image_size` and `grayscale`, so the episode shape is known"

    def load(self, dataset, context: SourceContext) -> Columns:
        key = ("tfds", dataset.model_dump_json(), str(context.resolve_path(dataset.data_dir or ".")))
        columns, info, rows, class_names = cached(key, lambda: _read(dataset, context))
        return Columns(columns=dict(columns), info=dict(info), class_names=class_names,
                       feature_columns=dataset.features, where=context.dataset_where(),
                       split_rows=dict(rows) if rows else None)


__all__ = ["Tfds", "TfdsDataset", "full_name"]
