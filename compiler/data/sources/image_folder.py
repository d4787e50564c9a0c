"""`source: image_folder`: class-structured images from a folder tree or a .zip.

Layout: `<root>/<class>/<image>`, or with `class_depth: 2` `<root>/<a>/<b>/<image>` where
the class is `a/b` (Omniglot: `<alphabet>/<character>/<drawing>.png`). Images may sit
deeper than the class folders; they belong to the class their first `class_depth` folders
name. Hidden files and folders (`.name`) and macOS `__MACOSX` folders are ignored, as are
files whose extension is not in `extensions`.

A lone wrapping folder is skipped once: when every image lies under the same single
top-level folder *and* at least `class_depth + 2` levels deep, that folder is treated as
the root. Zips made by archiving a folder (`images_background.zip` holding
`images_background/<alphabet>/<character>/...`) then work without unpacking, and a tree
whose images sit exactly at the class depth is never touched.

Columns: `image` float32 (N, H, W, C) in [0, 1] (C = 1 when `grayscale`, else 3; `invert`
maps v -> 1 - v, e.g. to make Omniglot's black strokes 1 on a 0 background), resized to
`image_size` = (height, width); `label` int64 class index (classes sorted by name);
`class_names` holds the names. Decoded arrays are cached per process (keyed by path, size,
mtime and options).
"""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path, PurePosixPath

import numpy as np

from polytask.compiler.data.files import cached, existing_path, stat_key
from polytask.compiler.data.registry import Columns, DataSource, SourceContext, register_source
from polytask.compiler.data.table import ColumnInfo
from polytask.errors import DataError


class ImageTree:
    """The images of a folder or zip grouped by class, in a stable order; no decoding."""

    def __init__(self, path: Path, class_depth: int, extensions, where: str):
        self.path = path
        self.is_zip = path.is_file()
        self.where = where
        suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
        members = self._list_members()
        images = [m for m in members if PurePosixPath(m).suffix.lower() in suffixes]
        if not images:
            raise DataError(
                f"no images ({', '.join(sorted(suffixes))}) found in {path}",
                hint="point `path` at the folder (or .zip) whose subfolders are the classes",
                where=where,
            )
        parts = [PurePosixPath(m).parts for m in images]
        prefix = ()
        tops = {p[0] for p in parts}
        if len(tops) == 1 and all(len(p) >= class_depth + 2 for p in parts):
            prefix = (next(iter(tops)),)
        by_class: dict[str, list[str]] = {}
        for member, member_parts in zip(images, parts):
            inner = member_parts[len(prefix):]
            if len(inner) < class_depth + 1:
                raise DataError(
                    f"image '{member}' in {path} is not inside {class_depth} level(s) of class folders",
                    hint=f"with class_depth {class_depth} images must be at <root>/"
                    + "/".join(f"<level{i + 1}>" for i in range(class_depth))
                    + "/<image>; fix the layout or `class_depth`",
                    where=where,
                )
            by_class.setdefault("/".join(inner[:class_depth]), []).append(member)
        self.root_prefix = "/".join(prefix)
        self.class_names = sorted(by_class)
        self.files = [sorted(by_class[name]) for name in self.class_names]

    def _list_members(self) -> list[str]:
        if self.is_zip:
            try:
                with zipfile.ZipFile(self.path) as archive:
                    names = [n for n in archive.namelist() if not n.endswith("/")]
            except (zipfile.BadZipFile, OSError) as exc:
                raise DataError(f"cannot open {self.path} as a zip file: {exc}", where=self.where) from None
        else:
            names = []
            for folder, dirs, files in os.walk(self.path):
                dirs[:] = [d for d in dirs if not _ignored(d)]
                relative = Path(folder).relative_to(self.path)
                names.extend(str(PurePosixPath(*relative.parts, f)) for f in files)
        return sorted(n for n in names if not any(_ignored(part) for part in PurePosixPath(n).parts))

    def counts(self) -> tuple[int, ...]:
        return tuple(len(f) for f in self.files)

    def read_all(self) -> list[tuple[str, bytes]]:
        """(display name, bytes) for every image in class order."""
        ordered = [m for files in self.files for m in files]
        out = []
        if self.is_zip:
            with zipfile.ZipFile(self.path) as archive:
                for member in ordered:
                    out.append((f"{self.path}/{member}", archive.read(member)))
        else:
            for member in ordered:
                file = self.path / member
                try:
                    out.append((str(file), file.read_bytes()))
                except OSError as exc:
                    raise DataError(f"cannot read image {file}: {exc.strerror}", where=self.where) from None
        return out


def _ignored(part: str) -> bool:
    return part.startswith(".") or part == "__MACOSX"


def unreadable_image_reason(exc: Exception) -> str:
    """Why Pillow could not open an image, in words (its own message names an in-memory BytesIO)."""
    from PIL import UnidentifiedImageError

    if isinstance(exc, UnidentifiedImageError):
        return "not an image Pillow can decode (a corrupt or truncated file, or not an image at all)"
    return str(exc) or type(exc).__name__


def decode_image(data: bytes, name: str, size: tuple[int, int], grayscale: bool, invert: bool) -> np.ndarray:
    """Bytes of one image -> float32 (H, W, C) in [0, 1]; a file PIL cannot read is a DataError naming it."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            image = image.convert("L" if grayscale else "RGB")
            height, width = size
            if image.size != (width, height):
                image = image.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(image, dtype=np.float32)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DataError(
            f"cannot read image {name}: {unreadable_image_reason(exc)}",
            hint="remove or replace the file (or leave its extension out of `extensions`)",
        ) from None
    array *= 1.0 / 255.0
    if invert:
        array = 1.0 - array
    return array[..., None] if grayscale else array


def load_images(tree: ImageTree, size, grayscale: bool, invert: bool) -> np.ndarray:
    blobs = tree.read_all()
    channels = 1 if grayscale else 3
    images = np.empty((len(blobs), size[0], size[1], channels), dtype=np.float32)
    # Sequential on purpose: small PNGs are dominated by per-call overhead that holds the
    # GIL, and a thread pool measured slower (2,720 Omniglot PNGs: 0.44 s alone, 0.55-0.75 s
    # with 2-8 threads). See docs/data-sources.md.
    for index, (name, data) in enumerate(blobs):
        images[index] = decode_image(data, name, size, grayscale, invert)
    return images


def _tree(dataset, context: SourceContext) -> tuple[ImageTree, Path]:
    path = existing_path(context, dataset.path, what="image folder or zip", allow_dir=True)
    key = ("image_tree", stat_key(path), dataset.class_depth, tuple(dataset.extensions))
    if path.is_dir():
        key = key + (_tree_stamp(path),)
    where = context.dataset_where("path")
    tree = cached(key, lambda: ImageTree(path, dataset.class_depth, dataset.extensions, where))
    return tree, path


def _tree_stamp(path: Path) -> tuple:
    """Cheap change detector for a folder tree: mtimes of the root and its class folders."""
    stamps = []
    for folder, dirs, _ in os.walk(path):
        dirs[:] = [d for d in dirs if not _ignored(d)]
        stamps.append(os.stat(folder).st_mtime_ns)
    return (len(stamps), hash(tuple(stamps)))


@register_source("image_folder")
class ImageFolderSource(DataSource):
    """Images in class folders (or a zip of them) -> `image` and `label` columns."""

    def load(self, dataset, context: SourceContext) -> Columns:
        tree, path = _tree(dataset, context)
        options = (tuple(dataset.image_size), dataset.grayscale, dataset.invert)
        key = ("images", stat_key(path), dataset.class_depth, tuple(dataset.extensions), options)
        if path.is_dir():
            key = key + (_tree_stamp(path),)
        try:
            images = cached(key, lambda: load_images(tree, *options))
        except DataError as exc:
            exc.where = exc.where or context.dataset_where()
            raise
        labels = np.repeat(np.arange(len(tree.class_names), dtype=np.int64), tree.counts())
        info = self.describe(dataset, context)
        return Columns(
            columns={"image": images, "label": labels},
            class_names=list(tree.class_names),
            feature_columns=["image"],
            info=info,
            where=str(path),
        )

    def default_features(self, dataset) -> list[str]:
        return ["image"]

    def describe(self, dataset, context: SourceContext) -> dict[str, ColumnInfo]:
        tree, _ = _tree(dataset, context)
        channels = 1 if dataset.grayscale else 3
        return {
            "image": ColumnInfo(shape=(dataset.image_size[0], dataset.image_size[1], channels), dtype="float32"),
            "label": ColumnInfo(
                shape=(),
                dtype="int64",
                categorical=True,
                num_classes=len(tree.class_names),
                class_counts=tree.counts(),
            ),
        }
