"""Data sources: a dataset spec in, a `Table` of NumPy columns with seeded splits out.

    from polytask.compiler.data import load_table, describe_table, Table, Column
    table = load_table("digits", spec.datasets["digits"], loaded)
    x = table.features(None, targets={"target"}, rows=table.rows("train"))

Sources are descriptors in the `SOURCES` registry, one module each under `sources/`;
synthetic generators likewise (`GENERATORS`) under `generators/`. See docs/data-sources.md.
"""
from polytask.compiler.data.load import (
    Columns,
    SourceContext,
    available_sources,
    default_input_columns,
    describe_table,
    get_source,
    load_table,
)
from polytask.compiler.data.sources import Source
from polytask.compiler.data.table import MISSING_LABEL, SPLIT_NAMES, Column, ColumnInfo, Table

__all__ = [
    "Column",
    "ColumnInfo",
    "Columns",
    "MISSING_LABEL",
    "SPLIT_NAMES",
    "Source",
    "SourceContext",
    "Table",
    "available_sources",
    "default_input_columns",
    "describe_table",
    "get_source",
    "load_table",
]
