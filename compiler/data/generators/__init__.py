"""Synthetic data generators: one module per `generator: {kind: ...}`, each owning everything
about that generator.

A generator descriptor declares, in one file:
- `name` and `Params` (`kind: Literal["<name>"]`, and `tasks`); the `synthetic` source's
  `generator` field is the tagged union of every registered generator's params;
- TensorFlow- and NumPy-free facts: `shapes` (every column's per-example shape, without
  generating), `spec_problems` (settings that cannot work, reported by `polytask check` as
  PT107 at `datasets.<name>.generator.<path>`) and `check` (the same as a `DataError` when
  loading; by default the first of `spec_problems`);
- `generate(params, samples, rng_for) -> {column: array}`, where `rng_for(stream)` hands out
  independent NumPy generators seeded by the spec seed, one per named stream: task
  parameters and inputs use different streams, so changing `samples` never changes the
  tasks, and changing a knob such as `correlation` never changes `x`.

Every generator's input column is `x` and its targets are `task_0 ... task_{T-1}`.
"""
from __future__ import annotations

from typing import ClassVar, Optional

from polytask.errors import DataError
from polytask.spec.registry import Concept


class Generator(Concept):
    """Base of every generator descriptor."""

    inputs: ClassVar[list[str]] = ["x"]

    def shapes(self, params) -> dict[str, tuple[int, ...]]:
        """{column: per-example shape}, without generating."""
        raise NotImplementedError

    def spec_problems(self, params) -> list[tuple[str, tuple, Optional[str]]]:
        """(message, path below `generator`, hint) for settings that cannot work."""
        return []

    def check(self, params) -> None:
        """Refuse settings that cannot work, as a DataError (cheap: `describe` calls it)."""
        problems = self.spec_problems(params)
        if problems:
            message, _, hint = problems[0]
            raise DataError(message, hint=hint)

    def generate(self, params, samples: int, rng_for) -> dict:
        raise NotImplementedError


def task_columns(count: int) -> list[str]:
    """Target column names of a generator with `count` tasks: task_0 ... task_{count-1}."""
    return [f"task_{i}" for i in range(count)]


