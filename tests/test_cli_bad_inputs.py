"""Bad inputs a user can give the CLI end in one clear message, never a traceback.

Each case here was found by running the verbs by hand with bad input; they stay fast (no
training, or a few steps on a tiny spec).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from polytask.cli import main
from polytask.errors import DataError

SPECS = Path(__file__).resolve().parent / "specs"


def invoke(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args])
    # An uncaught exception would also give exit code 1; only a clean sys.exit counts here.
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def specs(tmp_path):
    """tests/specs/{data,valid} copied into tmp_path, so cases can break the data."""
    shutil.copytree(SPECS / "data", tmp_path / "data")
    shutil.copytree(SPECS / "valid", tmp_path / "valid")
    return tmp_path


def test_an_undecodable_image_is_named_in_plain_words(specs):
    (specs / "data" / "shapes" / "circle" / "9.png").write_text("not an image")
    result = invoke("train", specs / "valid" / "images_protonet.yaml", "--steps", "1", "--out", specs / "run", "-q")
    assert result.exit_code == 1
    assert "cannot read image" in result.output and "9.png" in result.output
    assert "not an image Pillow can decode" in result.output
    assert "BytesIO" not in result.output  # Pillow's own message names its in-memory buffer


@pytest.mark.parametrize("content", ["x,y\n", None])
def test_a_few_shot_regression_set_without_rows_is_a_data_error(tmp_path, content):
    from polytask.runtime.meta_eval import _read_table

    if content is None:
        path = tmp_path / "support.npz"
        np.savez(path, x=np.zeros((0, 1)), y=np.zeros(0))
    else:
        path = tmp_path / "support.csv"
        path.write_text(content)
    with pytest.raises(DataError, match="has no rows"):
        _read_table(path, "support", need_y=True)
