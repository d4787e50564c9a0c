"""The contract between the compiler and the runtime.

A `Program` is what the compiler lowers a spec to: models, optimizers and data pipelines
already built under the active tf.distribute strategy scope. The runtime
(`polytask.runtime.loop.fit`) drives it -- loop, checkpoints, logs, early stopping, export,
report -- without knowing which sharing pattern (pooled, hard, meta) it is.

How a program is found: `polytask.compiler.compile.compile_program(loaded, strategy=...,
seed=..., allow_code=...)` lowers pooled and hard specs itself and, for `sharing: meta`,
calls `polytask.compiler.meta.compile_program(loaded, strategy=..., seed=...,
allow_code=...)` with the same keyword arguments, which must return an object that
satisfies this protocol.

Rules every implementation follows so resume is exact and distribution works:

- Everything that changes during training and influences later steps (variables,
  optimizer slots, step counters, data iterators, RNG state) is reachable from
  `checkpoint_items()`; restoring them and calling `train_step()` again must give the same
  numbers as never having stopped.
- `train_step()` runs one optimizer update (one `strategy.run` inside a `tf.function`) and
  returns *global* scalars (already reduced over replicas).
- Optional: a program with `steps_per_call > 1` also has `train_steps(n)`, which runs up to
  n (<= steps_per_call) updates in one call and returns (the last update's outputs, updates
  run), stopping right after an update with a non-finite output. The loop never lets a
  call cross a log, evaluation or checkpoint step.
- Nothing in `evaluate`, `export` or `report` may advance training state (no reads from the
  training iterator, no RNG draws from checkpointed generators).
"""
from __future__ import annotations

from typing import Any, Mapping, Optional, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

#: Files a program's `export` writes into its export directory beside the SavedModel, for
#: the runtime to read back (`polytask.runtime.rundir.RunDir` builds their paths).
EXPORT_INFO_FILE = "polytask.json"  # pooled and hard programs: tasks, input columns, class names
META_EXPORT_INFO_FILE = "polytask_meta.json"  # meta programs: what evaluation needs to adapt


class ExportedTask(BaseModel):
    """One task of a multi-task export: what `evaluate` and `predict` need to use its signature."""

    model_config = ConfigDict(extra="forbid")
    loss: str
    loss_params: Optional[dict] = None
    metrics: list[str] = []
    input_columns: list[str] = []
    class_names: Optional[list[Any]] = None
    weight: float = 1.0
    # Written for people reading the file; evaluate and predict do not need them.
    dataset: Optional[str] = None
    target: Optional[str] = None
    output_units: Optional[int] = None
    label_width: Optional[int] = None


class ExportInfo(BaseModel):
    """The content of EXPORT_INFO_FILE, written by a multi-task program's `export` and validated
    when the runtime reads it back (a damaged or hand-edited file is a clear error, not a KeyError)."""

    model_config = ConfigDict(extra="forbid")
    input_shape: list[int]
    sharing: Optional[str] = None
    tasks: dict[str, ExportedTask] = Field(min_length=1)


@runtime_checkable
class Program(Protocol):
    """A compiled, ready-to-train polytask program (see the module docstring for the rules)."""

    plan: Any  # polytask.compiler.plan.Plan, or any object with `to_dict()`
    strategy: Any  # the tf.distribute.Strategy the program was built under

    def checkpoint_items(self) -> Mapping[str, Any]:
        """Trackables to save and restore (models, optimizer, step counters, data iterators, RNG state).

        Keys become names in the checkpoint; the runtime adds its own `loop_*` items, so do
        not use keys starting with `loop_`.
        """

    def train_step(self) -> Mapping[str, Any]:
        """One optimizer update; returns scalar tensors reduced over replicas.

        Required key: `loss` (the total the optimizer minimised). Keys starting with `loss/`
        (e.g. `loss/<task>`) are shown in the progress line; every key is logged to
        metrics.jsonl and TensorBoard, and a non-finite value of any key stops the run with
        a message naming that key and the step.
        """

    def evaluate(self, split: str) -> Mapping[str, float]:
        """Metrics on a split ('validation' or 'test') as plain floats.

        Keys like `<task>/accuracy`, `<task>/loss` and an overall `loss` (used by default for
        early stopping). Return an empty mapping when the split has no data.
        """

    def export(self, directory: str) -> None:
        """Write a SavedModel to `directory` with one serving signature per task, plus
        `EXPORT_INFO_FILE` (or, for meta programs, `META_EXPORT_INFO_FILE`) beside it."""


class ProgramExtras(Protocol):
    """Optional methods the runtime calls when a program has them.

    report() -> Mapping[str, Any]
        Extra JSON-ready fields merged into report.json after training (e.g. meta-test
        metrics with confidence intervals, an adaptation curve). Called on the chief only,
        after the final checkpoint is written.

    parameter_counts() -> Mapping[str, int]
        {'shared': ..., 'task_specific': ..., 'total': ...} counted from the built
        variables; the runtime falls back to `plan.to_dict()['totals']`.
    """

    def report(self) -> Mapping[str, Any]: ...

    def parameter_counts(self) -> Mapping[str, int]: ...


def steps_until_non_finite(step, count, watched=None):
    """Run `step()` (a dict of tensors) up to `count` times inside one graph, stopping after the
    first call with a non-finite output so the runtime can name that step; (outputs, calls run).

    `watched` names the outputs whose finiteness decides (default: all of them); a program
    whose total loss and gradient norm are non-finite whenever any output is passes those
    two, which keeps the check to a handful of ops per step (it was 10% of a small step).
    Called from a `tf.function`: the multi-task and meta programs run several training steps
    per graph call with it.
    """
    import tensorflow as tf

    def finite(outputs):
        values = [outputs[name] for name in watched] if watched else list(outputs.values())
        return tf.reduce_all(tf.stack([tf.reduce_all(tf.math.is_finite(v)) for v in values]))

    def body(ran, _, outputs):
        outputs = step()
        return ran + 1, finite(outputs), outputs

    first = step()
    ran, _, outputs = tf.while_loop(lambda ran, ok, _: tf.logical_and(ok, ran < count), body,
                                    (tf.constant(1, tf.int32), finite(first), first))
    return outputs, ran
