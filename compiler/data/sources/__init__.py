"""Data sources: one module per `source:` name, each owning everything about that source.

A source descriptor declares, in one file:
- `name` and `Params`, its pydantic params model (`source: Literal["<name>"]`, derived
  from `polytask.spec.facts.DatasetBase`, which has `split`); the spec's `Dataset` union,
  the JSON Schema and the reference docs are generated from these;
- for docs/data-sources.md, `default_input`, `other_columns` and `reads` (short phrases),
  and for docs/spec-language.md `reference_models` (models nested in `Params`);
- its default input (`default_inputs`: `x`, `image`, the dataset's `features:`, or None for
  "every column no task uses as a target");
- TensorFlow-free facts for `polytask check`: `static_facts` (from the spec alone) and
  `facts` (reading headers and listings only; `data_path` names the file the check
  caches on), `spec_column` (a column the spec fixes even when the data is not read),
  `target_problem` and `spec_problems` (source-specific spec checks);
- its loader: `load` (columns as NumPy arrays) and `describe` (column facts for
  `polytask plan`, cheap where it can be; by default it loads and infers).

Registering (see `csv.py`):

    @SOURCES.register
    class Csv(Source):
        name = "csv"
        Params = CsvDataset
        ...

Modules here import without TensorFlow (and import Pillow, scikit-learn and TensorFlow
only inside the methods that need them), since `polytask check` loads them.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, Optional

from polytask.spec.facts import Column, Facts, declared_features
from polytask.spec.registry import Concept

if TYPE_CHECKING:
    from polytask.compiler.data.load import Columns, SourceContext


class Source(Concept):
    """Base of every data source descriptor."""

    # docs/data-sources.md's source table
    default_input: ClassVar[str] = "`features:` or all non-target columns"
    other_columns: ClassVar[str] = ""
    reads: ClassVar[str] = ""
    # `polytask check`: the code and noun when a task names a column the data lacks
    missing_column_code: ClassVar[str] = "PT204"
    column_noun: ClassVar[str] = "column"

    # ---- facts (no TensorFlow; no file reads except in `facts`)
    def default_inputs(self, params) -> Optional[list[str]]:
        """The input columns when a task names none; None means every non-target, non-text column."""
        return declared_features(params)

    def data_path(self, params) -> Optional[str]:
        """The spec path of the file `facts` reads (its cache key): the dataset's `path`, or None."""
        return getattr(params, "path", None)

    def static_facts(self, params) -> Facts:
        """Facts known from the spec alone (`polytask check --no-data`)."""
        return Facts()

    def facts(self, params, resolve, report) -> Facts:
        """Facts from cheap reads (headers, listings); `report(code, message, hint=None)` reports
        a problem at `datasets.<name>.path`, `resolve(path)` resolves a spec path."""
        return self.static_facts(params)

    def spec_column(self, params, name: str) -> Optional[Column]:
        """A column whose description the spec alone fixes, even when the data is not read."""
        return (self.static_facts(params).columns or {}).get(name)

    def target_problem(self, params, target: str) -> Optional[tuple[str, Optional[str]]]:
        """(message, hint) when no column of this source can be `target` whatever the data holds."""
        return None

    def spec_problems(self, params) -> list[tuple[str, tuple, Optional[str]]]:
        """(message, path below the dataset, hint) for settings that cannot work (PT107)."""
        return []

    def episode_image_shape(self, params) -> Optional[tuple]:
        """The image shape when this dataset is class-structured images (`image` and `label`
        columns) that a `classes` family can draw episodes from, known from the spec alone; else None."""
        return None

    def episode_hint(self) -> str:
        """How to make a dataset of this source usable by a `classes` family."""
        return "use a `source: image_folder` dataset (a folder tree or zip) or a class-structured `source: tfds`"

    def reference_models(self) -> list[tuple[str, type]]:
        """(label, model) of models nested in `Params` that the reference docs list after it."""
        return []

    # ---- loading (NumPy; heavy libraries imported inside)
    def load(self, params, context: "SourceContext") -> "Columns":
        raise NotImplementedError

    def describe(self, params, context: "SourceContext") -> dict[str, Column]:
        from polytask.compiler.data.load import _finish

        return _finish(self.load(params, context), context).info
