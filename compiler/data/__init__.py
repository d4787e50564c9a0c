"""Data sources: a dataset spec in, a `Table` of NumPy columns with seeded splits out.

    from polytask.compiler.data import load_table, describe_table, Table, ColumnInfo
    table = load_table("digits", spec.datasets["digits"], loaded)
    x = table.features(None, targets={"target"}, rows=table.rows("train"))

Sources register themselves by name (`@register_source`), one module each under
`sources/`; synthetic generators likewise under `generators/`. See docs/data-sources.md.
"""
from polytask.compiler.data.registry import (
    Columns,
    DataSource,
    SourceContext,
    available_sources,
    default_input_columns,
    describe_table,
    get_source,
    load_table,
    register_source,
)
from polytask.compiler.data.table import MISSING_LABEL, SPLIT_NAMES, ColumnInfo, Table

__all__ = [
    "ColumnInfo",
    "Columns",
    "DataSource",
    "MISSING_LABEL",
    "SPLIT_NAMES",
    "SourceContext",
    "Table",
    "available_sources",
    "default_input_columns",
    "describe_table",
    "get_source",
    "load_table",
    "register_source",
]
