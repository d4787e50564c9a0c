"""`hard`: hard parameter sharing, a shared trunk with one head per task.

Every task's examples go through one trunk (so the tasks need one input space); each task
has its own head: the spec's `head` layers plus the inferred output layer. Heads of the
same shape are stacked into one parameter tensor (`polytask.compiler.multitask.heads`), so
head layers must have a stacked form; the graph does not grow with the number of tasks.
"""
from __future__ import annotations

from pydantic import Field

from typing import TYPE_CHECKING, Literal, Optional

from polytask.compiler.layers import final_shape, flat_size, infer_layers, output_layer
from polytask.compiler.sharing import SharingPattern, check_layers, one_input_shape
from polytask.spec.registry import LAYERS, SHARING
from polytask.spec.suggest import one_of
from polytask.spec.types import StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class HardStructure(StrictModel):
    """A shared trunk with one head per task (hard parameter sharing)."""

    sharing: Literal["hard"] = Field(description='`hard`')
    trunk: LayerList = Field(description='Shared layers.')
    head: LayerList = Field([], description='Per-task hidden layers after the trunk; the output layer is inferred.')


def head_signature(head_layers, units: int) -> str:
    """Tasks whose heads have this same signature are stacked into one parameter tensor."""
    return "|".join(f"{l.kind}:{l.params.model_dump_json()}" for l in head_layers) + f"|out:{units}"


def check_heads(view, head, features: Optional[tuple]) -> None:
    """PT220 for head layers without a stacked form; PT221 when the heads do not fit `features`
    (the shape the shared part hands each task's head; None: unknown)."""
    stackable = True
    for i, layer in enumerate(head):
        if LAYERS.get(layer.kind).supports("stacked") is not None:
            stackable = False
            heads_take = LAYERS.where(lambda d: d.supports("stacked") is None)
            view.report("PT220", f"head layer {i + 1} is `{layer.kind}`, which cannot be stacked per task",
                        ("structure", "head", i),
                        hint=f"heads take {one_of(heads_take)} layers; put other layers in the trunk")
    if features is not None and stackable:
        check_layers(view, head, (flat_size(features),), ("structure", "head"), "stacked")


def plan_heads(head, tasks: dict, features: tuple, notes: list, what: str) -> list:
    """The `head[<task>]` groups over `features` (flattened), stacked by head signature; sets each
    task's `head_group`. `what` names the features in the note about flattening."""
    from polytask.compiler.plan import ParamGroup, layer_plans, param_count

    head_in = (flat_size(features),)
    if len(features) > 1:
        notes.append(f"{what} {list(features)} is flattened to {list(head_in)} for the heads")
    signatures: dict[str, list[str]] = {}
    for name, task in tasks.items():
        signatures.setdefault(head_signature(head, task.output_units), []).append(name)
    groups = []
    for group_index, members in enumerate(signatures.values()):
        units = tasks[members[0]].output_units
        plans = infer_layers(list(head) + [output_layer(units)], head_in, "structure.head", "stacked")
        per_head = param_count(plans)
        label = f"heads/{group_index}"
        for name in members:
            tasks[name].head_group = label
            groups.append(ParamGroup(f"head[{name}]", [name], False, per_head, layer_plans(plans),
                                     note=f"stacked in {label} ({len(members)} x {per_head:,})", stack=label))
    return groups


@SHARING.register
class Hard(SharingPattern):
    """A shared trunk with one (stacked) head per task."""

    name = "hard"
    Params = HardStructure
    shared_representation = True
    starter = """
# Named datasets; tasks refer to them by name. Sources: <<source>>
# (python runs code: opt-in). Relative paths resolve against this file's folder.
datasets:
  mmoe:
    source: synthetic
    # MMoE's synthetic regression tasks (Ma et al. 2018): the label correlation is a knob
    generator: {kind: mmoe, tasks: 2, input_dim: 100, correlation: 0.9}
    samples: 5000
    split: {train: 0.8, validation: 0.1, test: 0.1}

# A task is T_i = (dataset, target, loss), with optional metrics, a loss weight and a
# sampling rate (how often its batches are drawn; separate from the weight).
tasks:
  first: {dataset: mmoe, target: task_0, loss: mse, metrics: [rmse]}
  second: {dataset: mmoe, target: task_1, loss: mse, metrics: [rmse]}

# hard: a shared trunk, then one head per task (the output layer is inferred).
structure:
  sharing: hard
  trunk:
    - dense: {units: 64, activation: relu}
    - dense: {units: 64, activation: relu}
  head:
    - dense: {units: 16, activation: relu}

training:
  steps: 3000
  batch_size: 128
  optimizer: {adam: {learning_rate: 1.0e-3}}
  schedule: {kind: cosine, warmup_steps: 100}
  sampling: proportional      # uniform | proportional | {temperature: 2.0}
  weighting: uncertainty      # or a list of: <<weighting>>
  eval_every: 250
  checkpoint_every: 1000
  early_stopping: {metric: loss, patience: 5}
"""  # `polytask init --pattern hard`

    def check(self, structure, view):
        shape = one_input_shape(view, "hard")
        trunk_out = check_layers(view, structure.trunk, shape, ("structure", "trunk"))
        check_heads(view, structure.head, trunk_out)

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import ParamGroup, layer_plans, param_count

        names, notes = list(tasks), []
        trunk = infer_layers(structure.trunk, input_shape, "structure.trunk")
        trunk_out = final_shape(trunk, input_shape)
        groups = [ParamGroup("trunk", names, True, param_count(trunk), layer_plans(trunk))]
        return groups + plan_heads(structure.head, tasks, trunk_out, notes, "the trunk output"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.model import HardSharingNet

        return HardSharingNet(structure.trunk, structure.head, groups, num_tasks, mean, std)
