"""`pooled`: one model over D = U D_i with L = sum_i w_i L_i, optionally conditioned on z_i.

Every task's examples go through one network and one output layer, so the tasks need one
input space and one output width. Tasks that share their inputs but predict different
targets need a task descriptor z_i (a one-hot vector or a learned embedding joined to the
input), or the model cannot tell them apart. The descriptor is joined to vector inputs only.
"""
from __future__ import annotations

from pydantic import Field

from typing import TYPE_CHECKING, Literal

from polytask.compiler.layers import final_shape, flat_size, infer_layers, output_layer
from polytask.compiler.sharing import SharingPattern, check_layers
from polytask.spec.registry import SHARING
from polytask.spec.types import PositiveInt, StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList

HARD_HINT = "use `sharing: hard` for a shared trunk with one head per task"


class PooledStructure(StrictModel):
    """One model over D = U D_i with L = sum_i w_i L_i, optionally conditioned on z_i."""

    sharing: Literal["pooled"] = Field(description='`pooled`')
    model: LayerList = Field([], description='Hidden layers; the output layer is inferred.')
    descriptor: Literal["none", "onehot", "embedding"] = Field("none", description='How the model is told the task: none, a one-hot vector, or a learned embedding.')
    embedding_dim: PositiveInt = Field(8, description='Width of the task embedding (descriptor: embedding).')


def model_input(structure, input_shape: tuple, num_tasks: int) -> tuple:
    """The model's input: the data's, widened by the task descriptor."""
    if structure.descriptor == "onehot":
        return (input_shape[0] + num_tasks,)
    if structure.descriptor == "embedding":
        return (input_shape[0] + structure.embedding_dim,)
    return tuple(input_shape)


@SHARING.register
class Pooled(SharingPattern):
    """One model for every task's data (L = sum_i w_i L_i), optionally told the task."""

    name = "pooled"
    Params = PooledStructure
    starter = """
# Named datasets; tasks refer to them by name. Sources: <<source>>
# (python runs code: opt-in). Relative paths resolve against this file's folder.
datasets:
  waves:
    source: synthetic
    generator: {kind: sinusoid, tasks: 3}   # columns: x, task_0, task_1, task_2
    samples: 2000
    split: {train: 0.8, validation: 0.1, test: 0.1}

# A task is T_i = (dataset, target, loss), with optional metrics, a loss weight and a
# sampling rate (how often its batches are drawn; separate from the weight).
tasks:
  wave_0: {dataset: waves, target: task_0, loss: mse, metrics: [mae]}
  wave_1: {dataset: waves, target: task_1, loss: mse, metrics: [mae]}
  wave_2: {dataset: waves, target: task_2, loss: mse, metrics: [mae], weight: 2.0}

# pooled: one model for every task, L = sum_i w_i L_i. These tasks share their inputs but
# not their targets, so the model is told which task each example is for (descriptor).
structure:
  sharing: pooled
  descriptor: onehot          # none | onehot | embedding
  model:
    - dense: {units: 64, activation: relu}
    - dense: {units: 64, activation: relu}
    # the output layer is inferred from each task's loss and target

training:
  steps: 2000
  batch_size: 64
  optimizer: {adam: {learning_rate: 1.0e-3}}
  sampling: uniform           # uniform | proportional | {temperature: 2.0}
  weighting: static           # each task's weight; or a list of: <<weighting>>
  eval_every: 200
  checkpoint_every: 500
"""  # `polytask init --pattern pooled`

    def check(self, structure, view):
        names = view.task_names
        if not names:
            return
        first = names[0]
        inputs = {n: view.input_shape(n) for n in names}
        units = {n: view.output_units(n) for n in names}
        for n in names[1:]:
            a, b = inputs[first], inputs[n]
            if a is not None and b is not None and a != b:
                view.report("PT207", f"pooled sharing trains one model for all tasks, but task '{first}' has inputs "
                            f"of shape {list(a)} and task '{n}' {list(b)}", ("tasks", n), prefer="key",
                            hint="give every task inputs of the same shape (`features:`), or train them separately")
            ua, ub = units[first], units[n]
            if ua is not None and ub is not None and ua != ub:
                view.report("PT207", f"pooled sharing has one output layer, but task '{first}' needs {ua} output "
                            f"unit{'s' if ua != 1 else ''} and task '{n}' {ub}", ("tasks", n), prefer="key",
                            hint=HARD_HINT)
        shape = next((s for s in inputs.values() if s is not None), None)
        if structure.descriptor != "none":
            if shape is not None and len(shape) != 1:
                view.report("PT207", f"a task descriptor ({structure.descriptor}) is joined to vector inputs, but "
                            f"the input has shape {list(shape)}", ("structure", "descriptor"),
                            hint="use descriptor: none for image inputs, or flatten them in the data")
                return
        elif len(names) > 1 and all(view.same_inputs(first, n) for n in names[1:]) \
                and len({view.target(n) for n in names}) > 1:
            view.report("PT207", "pooled sharing without a task descriptor sees the same inputs for every task, so "
                        "it cannot predict different targets for them",
                        ("structure",) if view.declared("structure") else (), prefer="key",
                        hint="set `descriptor: onehot` (or `embedding`) so the model knows which task an example "
                        "is for, or " + HARD_HINT)
        if shape is not None:
            check_layers(view, structure.model, model_input(structure, shape, len(names)), ("structure", "model"))

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import LayerPlan, ParamGroup, layer_plans, param_count

        names, notes, groups = list(tasks), [], []
        model_in = model_input(structure, input_shape, len(names))
        if structure.descriptor == "onehot":
            notes.append(f"a one-hot task id ({len(names)} values) is appended to the input")
        elif structure.descriptor == "embedding":
            size = len(names) * structure.embedding_dim
            groups.append(ParamGroup("task_embedding", names, False, size,
                                     [LayerPlan("embedding", (structure.embedding_dim,), size)],
                                     note=f"one learned {structure.embedding_dim}-vector per task, appended to the input"))
        body = infer_layers(structure.model, model_in, "structure.model")
        body_out = final_shape(body, model_in)
        if len(body_out) > 1:
            notes.append(f"the model output {list(body_out)} is flattened before the output layer")
        units = next(iter(tasks.values())).output_units
        out = infer_layers([output_layer(units)], (flat_size(body_out),), "output")
        groups.insert(0, ParamGroup("model", names, True, param_count(body + out), layer_plans(body + out)))
        for task in tasks.values():
            task.head_group = "model"
        return groups, notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.model import PooledNet

        return PooledNet(structure.model, groups[0][0], num_tasks, structure.descriptor, structure.embedding_dim,
                         mean, std)
