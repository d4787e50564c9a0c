"""docs/spec-language.md stays true: generated tables up to date, every code documented."""
from __future__ import annotations

from pathlib import Path

from polytask.spec.diagnostics import CODES
from polytask.spec.reference import update

DOC = Path(__file__).resolve().parent.parent / "docs" / "spec-language.md"


def test_generated_tables_are_up_to_date():
    text = DOC.read_text()
    assert update(text) == text, "run: python -m polytask.spec.reference --write docs/spec-language.md"


def test_every_code_is_in_the_table_and_every_source_is_described():
    text = DOC.read_text()
    for code in CODES:
        assert f"| {code} |" in text
    for source in ("csv", "npz", "image_folder", "tfrecord", "sklearn", "synthetic", "python"):
        assert f"#### source: {source}" in text and f"| `{source}` |" in text
    assert "# yaml-language-server: $schema=" in text


def test_committed_json_schema_is_up_to_date():
    from polytask.spec.schema import json_schema_text

    committed = Path(__file__).resolve().parent.parent / "spec" / "polytask.schema.json"
    assert committed.read_text() == json_schema_text(), "run: polytask schema -o spec/polytask.schema.json"
