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
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from polytask.compiler.data.files import cached, existing_path, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.errors import DataError, special_file
from polytask.spec.data_checks import missing
from polytask.spec.facts import Column, DatasetBase, Facts
from polytask.spec.registry import SOURCES
from polytask.spec.types import PositiveInt

if TYPE_CHECKING:
    import numpy as np


class ImageFolderDataset(DatasetBase):
    """Class-structured images: `<root>/<class>/<image>` (or deeper, see `class_depth`), a folder or a .zip."""

    source: Literal["image_folder"] = Field(description='`image_folder`')
    path: str = Field(description="A folder tree or a .zip; relative to the spec's folder.")
    image_size: tuple[PositiveInt, PositiveInt] = Field((28, 28), description='[height, width] images are resized to.')
    grayscale: bool = Field(True, description='One channel (true) or RGB (false).')
    invert: bool = Field(False, description="Map v -> 1 - v (e.g. Omniglot's black strokes become 1).")
    class_depth: PositiveInt = Field(
        1, description="Folder levels that make up a class name, e.g. 2 for Omniglot's <alphabet>/<character>."
    )
    extensions: list[str] = Field([".png", ".jpg", ".jpeg", ".bmp", ".gif"], description='Image file extensions to read (case-insensitive).')


def image_shape(params) -> tuple:
    height, width = params.image_size
    return (height, width, 1 if params.grayscale else 3)


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
                problem = special_file(file)
                if problem:
                    raise DataError(f"cannot read image: {problem}", hint="image folders hold regular files only",
                                    where=self.where)
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
    import numpy as np

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
    import numpy as np

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


def list_images(path: Path, extensions) -> list[str]:
    """Relative POSIX paths of the images in a folder tree or zip (hidden and __MACOSX skipped)."""
    suffixes = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    if path.is_file():
        with zipfile.ZipFile(path) as archive:
            names = [n for n in archive.namelist() if not n.endswith("/")]
    else:
        names = []
        for folder, dirs, files in os.walk(path):
            dirs[:] = [d for d in dirs if not _ignored(d)]
            relative = Path(folder).relative_to(path).parts
            names.extend("/".join((*relative, f)) for f in files)
    return [n for n in names if PurePosixPath(n).suffix.lower() in suffixes
            and not any(_ignored(p) for p in PurePosixPath(n).parts)]


def class_counts(images: list[str], class_depth: int) -> tuple[dict[str, int], list[str]]:
    """Images per class, and images that sit above the class folders."""
    parts = [PurePosixPath(m).parts for m in images]
    prefix = 0
    if len({p[0] for p in parts}) == 1 and all(len(p) >= class_depth + 2 for p in parts):
        prefix = 1  # a lone wrapping folder, as zips of a folder have
    counts: dict[str, int] = {}
    stray = []
    for member, member_parts in zip(images, parts):
        inner = member_parts[prefix:]
        if len(inner) < class_depth + 1:
            stray.append(member)
            continue
        key = "/".join(inner[:class_depth])
        counts[key] = counts.get(key, 0) + 1
    return counts, stray


def probe_images(params, resolve, report) -> Facts:
    """Classes and images per class from the listing, no decoding (for `polytask check`)."""
    path = resolve(params.path)
    if not path.exists():
        missing(report, path, "image folder or zip")
        return Facts()
    try:
        images = list_images(path, params.extensions)
    except (zipfile.BadZipFile, OSError) as exc:
        report("PT306", f"cannot read {path.name}: {exc}", hint="point `path` at a folder or a .zip")
        return Facts()
    if not images:
        report("PT306", f"no images ({', '.join(params.extensions)}) found in {path}",
               hint="point `path` at the folder (or .zip) whose subfolders are the classes")
        return Facts()
    if path.is_dir():  # a FIFO among the images would block `train` when it reads it
        special = [problem for problem in map(special_file, (path / name for name in images)) if problem]
        if special:
            report("PT306", f"cannot read image: {special[0]}"
                   + (f" ({len(special) - 1} more such files)" if len(special) > 1 else ""),
                   hint="image folders hold regular files only; move that file out of the folder")
            return Facts()
    counts, stray = class_counts(images, params.class_depth)
    if stray:
        report("PT306", f"image '{stray[0]}' in {path.name} is not inside {params.class_depth} level(s) of "
               f"class folders ({len(stray)} such image{'s' if len(stray) > 1 else ''})",
               hint="with class_depth N, images live at <root>/<level1>/.../<levelN>/<image>; "
               "fix the layout or `class_depth`")
    per_class = [counts[k] for k in sorted(counts)]
    columns = {
        "image": Column(image_shape(params), categorical=False, dtype="float32"),
        "label": Column((), categorical=True, num_classes=len(per_class), dtype="int64"),
    }
    return Facts(columns=columns, class_counts=per_class, rows=sum(per_class))


@SOURCES.register
class ImageFolder(Source):
    """Class-structured images from a folder tree or a .zip: `image` and `label` columns."""

    name = "image_folder"
    Params = ImageFolderDataset
    default_input = "`image` (N, H, W, C)"
    other_columns = "`label` + class names"
    reads = "a folder tree or a `.zip`"

    def default_inputs(self, params) -> list[str]:
        return ["image"]

    def facts(self, params, resolve, report) -> Facts:
        return probe_images(params, resolve, report)

    def episode_image_shape(self, params) -> tuple:
        return image_shape(params)

    def spec_column(self, params, name: str):
        return Column(image_shape(params), categorical=False, dtype="float32") if name == "image" else None

    def target_problem(self, params, target: str):
        if target != "label":
            return (f"an image_folder dataset's target is 'label' (the class), not '{target}'",
                    "write `target: label`")
        return None

    def load(self, dataset, context: SourceContext) -> Columns:
        import numpy as np

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

    def describe(self, dataset, context: SourceContext) -> dict[str, Column]:
        tree, _ = _tree(dataset, context)
        return {
            "image": Column(shape=image_shape(dataset), dtype="float32"),
            "label": Column(
                shape=(),
                dtype="int64",
                categorical=True,
                num_classes=len(tree.class_names),
                class_counts=tree.counts(),
            ),
        }
