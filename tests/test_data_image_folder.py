"""image_folder source: folder trees and zips made with PIL, and the real Omniglot zips."""
from __future__ import annotations

import zipfile

import numpy as np
import pytest
from PIL import Image

from data_support import describe, load
from polytask.errors import DataError


def _draw(path, value, size=(12, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", size, color=value).save(path)


def _tree(root, classes=("cat", "dog", "eel"), per_class=3):
    for c, name in enumerate(classes):
        for i in range(per_class):
            _draw(root / name / f"{i}.png", value=40 * c + i)
    return root


def _zip(folder, zip_path, prefix=""):
    with zipfile.ZipFile(zip_path, "w") as archive:
        for file in sorted(folder.rglob("*")):
            archive.write(file, prefix + str(file.relative_to(folder)))
    return zip_path


def test_folder_tree_columns(tmp_path):
    _tree(tmp_path / "imgs")
    (tmp_path / "imgs" / "README.txt").write_text("not an image")
    dataset = {"source": "image_folder", "path": "imgs", "image_size": [8, 6], "split": {"train": 0.5, "test": 0.5}}
    table = load(tmp_path, dataset)
    assert table.class_names == ["cat", "dog", "eel"]
    assert table.columns["image"].shape == (9, 8, 6, 1) and table.columns["image"].dtype == np.float32
    assert table.columns["label"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    # a flat grey image stays flat after resizing; its value is exactly the pixel / 255
    assert np.allclose(table.columns["image"][4], 41 / 255.0)
    assert table.info["label"].num_classes == 3 and table.info["label"].class_counts == (3, 3, 3)
    assert table.features(None, targets={"label"}).shape == (9, 8, 6, 1)
    assert [len(rows) for rows in table.rows_by_class()] == [3, 3, 3]
    assert describe(tmp_path, dataset) == table.info


def test_invert_and_rgb(tmp_path):
    _tree(tmp_path / "imgs", classes=("a", "b"), per_class=1)
    inverted = load(tmp_path, {"source": "image_folder", "path": "imgs", "invert": True, "image_size": [4, 4]})
    assert np.allclose(inverted.columns["image"][1], 1 - 40 / 255.0)
    rgb = load(tmp_path, {"source": "image_folder", "path": "imgs", "grayscale": False, "image_size": [4, 4]})
    assert rgb.columns["image"].shape == (2, 4, 4, 3)


def test_zip_with_wrapping_folder_and_class_depth_two(tmp_path):
    for alphabet in ("Greek", "Latin"):
        _tree(tmp_path / "src" / alphabet, classes=("c1", "c2"), per_class=2)
    archive = _zip(tmp_path / "src", tmp_path / "alpha.zip", prefix="images_background/")
    with zipfile.ZipFile(archive, "a") as z:  # macOS junk must not count as a wrapper or a class
        z.writestr("__MACOSX/images_background/Greek/c1/._0.png", b"junk")
    dataset = {"source": "image_folder", "path": "alpha.zip", "class_depth": 2, "image_size": [5, 5]}
    table = load(tmp_path, dataset)
    assert table.class_names == ["Greek/c1", "Greek/c2", "Latin/c1", "Latin/c2"]
    assert table.num_rows == 8
    # the same tree unzipped, without the wrapper, gives the same table
    unzipped = load(tmp_path, {**dataset, "path": "src"})
    assert unzipped.class_names == table.class_names
    assert np.array_equal(unzipped.columns["image"], table.columns["image"])


def test_lone_class_folder_is_not_mistaken_for_a_wrapper(tmp_path):
    _tree(tmp_path / "imgs", classes=("only",), per_class=4)
    table = load(tmp_path, {"source": "image_folder", "path": "imgs", "image_size": [4, 4]})
    assert table.class_names == ["only"]


def test_image_errors(tmp_path):
    _tree(tmp_path / "imgs")
    (tmp_path / "imgs" / "dog" / "broken.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(DataError, match=r"cannot read image .*broken\.png"):
        load(tmp_path, {"source": "image_folder", "path": "imgs"})
    _draw(tmp_path / "flat" / "stray.png", 0)
    with pytest.raises(DataError, match="not inside 1 level"):
        load(tmp_path, {"source": "image_folder", "path": "flat"})
    (tmp_path / "none").mkdir()
    with pytest.raises(DataError, match="no images"):
        load(tmp_path, {"source": "image_folder", "path": "none"})
    with pytest.raises(DataError, match="not found"):
        load(tmp_path, {"source": "image_folder", "path": "missing"})
    (tmp_path / "bad.zip").write_bytes(b"PK junk")
    with pytest.raises(DataError, match="cannot open .* as a zip"):
        load(tmp_path, {"source": "image_folder", "path": "bad.zip"})


@pytest.mark.data
def test_omniglot_zips(omniglot_zips):
    small1 = next(z for z in omniglot_zips if z.name == "images_background_small1.zip")
    dataset = {"source": "image_folder", "path": str(small1), "class_depth": 2, "invert": True, "image_size": [28, 28]}
    info = describe(small1.parent, dataset)
    assert info["label"].num_classes == 136 and set(info["label"].class_counts) == {20}
    table = load(small1.parent, dataset)
    assert table.columns["image"].shape == (136 * 20, 28, 28, 1)
    assert table.class_names[0] == "Balinese/character01"
    assert all(name.count("/") == 1 for name in table.class_names)
    images = table.columns["image"]
    assert 0.0 <= images.min() and images.max() <= 1.0
    # inverted Omniglot: mostly 0 background, strokes near 1
    assert 0.02 < images.mean() < 0.2 and images.max() > 0.9
    assert [len(r) for r in table.rows_by_class()] == [20] * 136
    # the drawings are 105x105; at that size nothing is resized, and the 28x28 table is the
    # same drawings shrunk (mean ink is preserved by the antialiased resize)
    native = load(small1.parent, {**dataset, "image_size": [105, 105]})
    assert native.columns["image"].shape == (2720, 105, 105, 1)
    assert set(np.unique(native.columns["image"]).tolist()) <= {0.0, 1.0}  # binary PNGs
    assert abs(float(native.columns["image"].mean()) - float(images.mean())) < 0.01
    small2 = [z for z in omniglot_zips if z.name == "images_background_small2.zip"]
    if small2:
        listing = describe(small2[0].parent, {**dataset, "path": str(small2[0])})
        assert listing["label"].num_classes == 156 and set(listing["label"].class_counts) == {20}
