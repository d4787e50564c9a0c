"""`source: csv`: a table in a csv file with a header row (the csv module and NumPy; no pandas).

Every cell must be a number or empty. Per column:
  * integer-valued, non-negative and below 1000 -> int64 class labels, categorical with
    num_classes = max + 1 (whether a task treats it as classes is the loss's business);
  * otherwise -> float32.
An empty cell is a *missing* value: -1 in an int64 column, NaN in a float32 one. A task
whose target is missing on a row skips that row in its loss; input features may not be
missing. `nan` counts as empty; `inf` is an error. The input is `features` (default: every
column no task uses as a target).

Errors name file:line and the column: a non-numeric cell, a row with the wrong number of
fields, a header with an empty or repeated name, an empty file, a feature that is not a column.
"""
from __future__ import annotations

import csv
import difflib
from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field

from polytask.compiler.data.files import cached, existing_path, raising_report, stat_key
from polytask.compiler.data.load import Columns, SourceContext
from polytask.compiler.data.sources import Source
from polytask.compiler.data.table import labels_or_numbers, number_column_facts
from polytask.errors import DataError
from polytask.spec.data_checks import missing
from polytask.spec.facts import MAX_CLASSES, DatasetBase, Facts
from polytask.spec.registry import SOURCES

if TYPE_CHECKING:
    import numpy as np

CSV_SAMPLE_ROWS = 20_000  # rows `polytask check` reads to tell label columns from numbers


class CsvDataset(DatasetBase):
    """A table in a csv file: feature columns in, one or more target columns out."""

    source: Literal["csv"] = Field(description='`csv`')
    path: str = Field(description="The csv file (header row, numeric cells); relative to the spec's folder.")
    features: Optional[list[str]] = Field(
        None, min_length=1, description="Input columns; default: every column that no task uses as a target."
    )
    delimiter: str = Field(",", min_length=1, max_length=1, description='One character.')


DELIMITERS = ",;\t|"  # what `delimiter_hint` tries


def delimiter_hint(path, delimiter: str, settable: bool = True) -> Optional[str]:
    """"it looks like ';'-separated: set `delimiter: ';'`" when the file's first lines split
    more evenly on another common delimiter than on `delimiter`; else None. `settable=False`
    (readers without a delimiter setting, e.g. predict's inputs) asks for a re-save instead."""
    try:
        with open(path, "rb") as handle:
            sample = handle.read(65536).decode("utf-8-sig", "replace")
    except OSError:
        return None
    lines = [line for line in sample.splitlines()[:20] if line.strip()]
    if len(lines) > 1 and len(sample) == 65536:
        lines = lines[:-1]  # the last line may be cut
    if not lines:
        return None

    def widths(candidate: str) -> list[int]:
        return [len(row) for row in csv.reader(lines, delimiter=candidate)]

    current = widths(delimiter)
    for candidate in DELIMITERS:
        if candidate == delimiter:
            continue
        found = widths(candidate)
        if found[0] > 1 and len(set(found)) == 1 and (len(set(current)) > 1 or found[0] > current[0]):
            if not settable:
                return f"it looks like {candidate!r}-separated; this reader takes {delimiter!r}-separated files: save it with {delimiter!r}"
            return f"it looks like {candidate!r}-separated: set `delimiter: {candidate!r}`"
    return None


def read_csv(path, delimiter: str, inputs: Optional[list[str]] = None,
             delimiter_settable: bool = True) -> tuple[list[str], dict[str, np.ndarray]]:
    """Parse a csv file into typed columns; every problem is a DataError at file:line.

    With `inputs` (predict's input columns) and all of them in the header, only those columns
    are parsed (others may hold anything) and an empty cell in them is an error at its cell.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header, header_line, rows, lines = None, 0, [], []
            for record in reader:
                if not record or (len(record) == 1 and not record[0].strip()):
                    continue  # blank line
                if header is None:
                    header, header_line = [c.strip() for c in record], reader.line_num
                    continue
                rows.append(record)
                lines.append(reader.line_num)
    except UnicodeDecodeError as exc:
        raise DataError(
            f"not UTF-8 text (byte {exc.start}: {exc.reason})",
            hint="save the file as UTF-8 csv",
            where=str(path),
        ) from None
    except csv.Error as exc:
        raise DataError(f"malformed csv: {exc}", hint="check quoting on that line", where=f"{path}:{reader.line_num}") from None
    if header is None:
        raise DataError("the csv file is empty", hint="the first row must name the columns", where=str(path))
    _check_header(header, path, header_line)
    if not rows:
        raise DataError(
            "the csv file has a header but no data rows", hint="add rows below the header", where=f"{path}:{header_line}"
        )
    width = len(header)
    for record, line in zip(rows, lines):
        if len(record) != width:
            raise DataError(
                f"row has {len(record)} field(s) but the header names {width} column(s)",
                hint=delimiter_hint(path, delimiter, delimiter_settable) or f"every row needs one value per column (delimiter "
                f"{delimiter!r}); leave a cell empty for a missing value",
                where=f"{path}:{line}",
            )
    cells_by_column = list(zip(*rows))
    selected = inputs if inputs and set(inputs) <= set(header) else None
    columns = {}
    try:
        for index, name in enumerate(header):
            if selected is not None and name not in selected:
                continue
            if selected is not None:
                for cell, line in zip(cells_by_column[index], lines):
                    if not cell.strip() or cell.strip().lower() == "nan":
                        what = "an empty cell" if not cell.strip() else f"a missing value ({cell.strip()!r})"
                        raise DataError(f"input column '{name}' has {what}", hint="inputs may not be missing",
                                        where=f"{path}:{line}:{index + 1}")
            columns[name] = _parse_column(name, cells_by_column[index], lines, path, index + 1)
    except DataError as exc:
        exc.hint = delimiter_hint(path, delimiter, delimiter_settable) or exc.hint
        raise
    return header, columns


def looks_headerless(header: list[str]) -> bool:
    """Every cell of the first row reads as a number: the file probably has no header row."""
    for cell in header:
        try:
            float(cell)
        except ValueError:
            return False
    return True


def _check_header(header: list[str], path, line: int) -> None:
    seen = {}
    for index, name in enumerate(header, start=1):
        if not name:
            raise DataError(
                f"column {index} of the header has no name",
                hint="give every column a name in the first row",
                where=f"{path}:{line}:{index}",
            )
        if name in seen:
            headerless = looks_headerless(header)
            raise DataError(
                f"column name '{name}' appears twice in the header (columns {seen[name]} and {index})"
                + ("; the first row holds only numbers, so the file may have no header row" if headerless else ""),
                hint="the first row must name the columns" if headerless else "rename one of them",
                where=f"{path}:{line}:{index}",
            )
        seen[name] = index


def _parse_column(name: str, cells, lines, path, position: int) -> np.ndarray:
    import numpy as np

    try:  # fast path: NumPy parses numbers (and surrounding spaces, 'nan', 'inf') in C
        values = np.asarray(cells, dtype=np.float64)
        missing = np.isnan(values)
    except ValueError:  # empty cells or text: go cell by cell
        values, missing = _parse_cells(name, cells, lines, path, position)
    return _typed(name, values, missing, lines, path, position)


def _parse_cells(name: str, cells, lines, path, position: int):
    import numpy as np

    stripped = [cell.strip() for cell in cells]
    missing = np.fromiter((not c or c.lower() == "nan" for c in stripped), dtype=bool, count=len(stripped))
    present = [c for c, m in zip(stripped, missing) if not m]
    values = np.full(len(stripped), np.nan)
    try:
        values[~missing] = np.asarray(present, dtype=np.float64)
    except ValueError:
        for cell, is_missing, line in zip(stripped, missing, lines):
            if is_missing:
                continue
            try:
                float(cell)
            except ValueError:
                raise DataError(
                    f"column '{name}' has a non-numeric value {cell[:40]!r}",
                    hint="csv cells must be numbers (encode categories as integers 0..K-1) or empty for a missing value",
                    where=f"{path}:{line}:{position}",
                ) from None
        raise
    return values, missing


def _typed(name: str, values: np.ndarray, missing: np.ndarray, lines, path, position: int) -> np.ndarray:
    """float64 values + missing mask -> int64 labels (-1 = missing) or float32 (NaN = missing)."""
    import numpy as np

    finite = np.isfinite(values) | missing
    if not finite.all():
        line = lines[int(np.argmin(finite))]
        raise DataError(
            f"column '{name}' has an infinite value",
            hint="replace it with a finite number, or leave the cell empty for a missing value",
            where=f"{path}:{line}:{position}",
        )
    too_large = np.abs(np.where(missing, 0.0, values)) > np.finfo(np.float32).max
    if too_large.any():
        index = int(np.argmax(too_large))
        raise DataError(
            f"column '{name}' has the value {values[index]:g}, too large for float32 (at most "
            f"{float(np.finfo(np.float32).max):.4g})",
            hint="rescale the column, or leave the cell empty for a missing value",
            where=f"{path}:{lines[index]}:{position}",
        )
    return labels_or_numbers(values, missing)


FLOAT32_MAX = 3.4028234663852886e38


def _cell_kind(cell: str):
    """(is a number or empty, its integer value or None, is empty, its value or None)."""
    text = cell.strip()
    if not text or text.lower() == "nan":
        return True, None, True, None
    try:
        value = float(text)
    except ValueError:
        return False, None, False, None
    if value != value or value in (float("inf"), float("-inf")):
        return False, None, False, None
    return True, (int(value) if value.is_integer() else None), False, value


def probe_csv(params, resolve, report, *, sample_rows: Optional[int] = CSV_SAMPLE_ROWS) -> Facts:
    """The header and, from the first `sample_rows` rows (None: all), each column's kind,
    missing cells and distinct labels. `check` reads a bounded sample; `plan` reads every row
    (exact class counts). Plain Python, so neither needs NumPy."""
    path = resolve(params.path)
    if not path.is_file():
        missing(report, path, "csv file")
        return Facts()

    def bad(message: str, hint: str) -> Facts:
        report("PT306", message, hint=delimiter_hint(path, params.delimiter) or hint)
        return Facts()

    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=params.delimiter)
            header = next(reader, None)
            while header is not None and (not header or (len(header) == 1 and not header[0].strip())):
                header = next(reader, None)  # blank lines before the header, as read_csv skips them
            if not header:
                report("PT306", f"{path.name} is empty; a csv needs a header row")
                return Facts()
            header = [h.strip() for h in header]
            if any(not h for h in header) or len(set(header)) != len(header):
                return bad(f"{path.name}: the header has an empty or repeated column name",
                           "name every column once in the first row")
            width = len(header)
            integral = [True] * width
            low = [0] * width
            high = [-1] * width
            empty_cells = [0] * width
            first_empty: list = [None] * width
            distinct: list = [set() for _ in range(width)]
            rows = 0
            for row in reader:
                line_no = reader.line_num
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                if len(row) != width:
                    return bad(f"{path.name}:{line_no}: {len(row)} fields, the header has {width}",
                               f"is the delimiter {params.delimiter!r} right?")
                rows += 1
                for i, cell in enumerate(row):
                    number, integer, empty, value = _cell_kind(cell)
                    if not number:
                        return bad(f"{path.name}:{line_no}: column '{header[i]}' holds {cell.strip()[:40]!r}, "
                                   "not a number", "csv cells must be numbers or empty (a missing value)")
                    if empty:
                        empty_cells[i] += 1
                        if first_empty[i] is None:
                            first_empty[i] = f"{path.name}:{line_no}:{i + 1}"
                        continue
                    if abs(value) > FLOAT32_MAX:
                        return bad(f"{path.name}:{line_no}: column '{header[i]}' holds {value:g}, too large for "
                                   f"float32", "rescale the column (float32 holds at most 3.4e38)")
                    if integer is None:
                        integral[i] = False
                    else:
                        low[i] = min(low[i], integer)
                        high[i] = max(high[i], integer)
                        if len(distinct[i]) <= MAX_CLASSES:
                            distinct[i].add(integer)
                if sample_rows is not None and rows >= sample_rows:
                    break
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        report("PT306", f"cannot read {path.name}: {exc}")
        return Facts()
    if rows == 0:
        report("PT306", f"{path.name} has a header but no rows", hint="add data rows below the header")
        return Facts()  # column facts from no rows would only add false follow-up errors
    columns = {column: number_column_facts(integral[i], low[i], high[i], missing=empty_cells[i],
                                           first_missing=first_empty[i], distinct=len(distinct[i]))
               for i, column in enumerate(header)}
    return Facts(columns=columns, rows=rows if sample_rows is None or rows < sample_rows else None)


@SOURCES.register
class Csv(Source):
    """A table in a csv file with a header row: feature columns in, target columns out."""

    name = "csv"
    Params = CsvDataset
    default_input = "all non-target columns, or `features:`"
    other_columns = "one per header name"
    reads = "a csv file with a header row"
    missing_column_code = "PT302"

    def facts(self, params, resolve, report) -> Facts:
        return probe_csv(params, resolve, report)

    def spec_problems(self, params):
        """A delimiter that cannot separate numbers: the quote, a line break, or a character of numbers."""
        d = params.delimiter
        if d in '"\r\n' or d in "0123456789.+-eE" or d.isspace() and d != "\t":
            return [(f"delimiter {d!r} cannot separate numeric cells (it is a quote, a line break, a space or "
                     "part of numbers)", ("delimiter",), "use ',', ';', '\\t' or '|'")]
        return []

    def _read(self, dataset, context: SourceContext):
        path = existing_path(context, dataset.path, what="csv file")
        header, columns = cached(("csv", stat_key(path), dataset.delimiter), lambda: read_csv(path, dataset.delimiter))
        _check_features(dataset, header, path)
        return path, columns

    def load(self, dataset, context: SourceContext) -> Columns:
        path, columns = self._read(dataset, context)
        return Columns(columns=dict(columns), feature_columns=dataset.features, where=str(path), typed=True)

    def describe(self, dataset, context: SourceContext):
        """Every column's facts from all rows, with `check`'s probe (no NumPy)."""
        path = existing_path(context, dataset.path, what="csv file")
        facts = probe_csv(dataset, lambda _: path, raising_report(path), sample_rows=None)
        _check_features(dataset, list(facts.columns), path)
        return dict(facts.columns)


def _check_features(dataset, header, path) -> None:
    for name in dataset.features or ():
        if name not in header:
            close = difflib.get_close_matches(name, header, n=1)
            raise DataError(
                f"feature column '{name}' is not in {path.name}",
                hint=(f"did you mean '{close[0]}'? " if close else "") + f"columns are: {', '.join(header)}",
                where=f"{path}:1",
            )


__all__ = ["Csv", "CsvDataset", "read_csv"]
