"""`ltb`: learning to branch (Guo et al. 2020, "Learning to Branch for Multi-Task Learning").

The `trunk` layers are laid out as a layered graph: trunk layer l has `branches[l]` nodes
(copies of the layer, own weights; default: one per task at every layer). Layer 0's nodes
read the input; every node of layer l > 0 picks its parent among layer l-1's nodes, and
every task's head among the last layer's, through a Gumbel-softmax over learned logits
theta (sec. 3.2):

    input(child) = sum_i z_i out(parent_i),   z = softmax((theta + g) / temperature),  g ~ Gumbel(0, 1)

sampled once per step (straight-through one-hot when `hard`, as LibMTL does). At inference
every child takes its argmax parent: a tree. At the end of training the discovered tree
(which tasks share each node) is in the run report (`learned_sharing`) and on stdout.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Union

from pydantic import Field

from polytask.compiler.layers import final_shape, infer_layers
from polytask.compiler.sharing import SharingPattern, check_layers, one_input_shape
from polytask.compiler.sharing._experts import starter_body
from polytask.compiler.sharing.hard import check_heads, plan_heads
from polytask.spec.registry import SHARING
from polytask.spec.types import PositiveFloat, PositiveInt, StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class LTBStructure(StrictModel):
    """A trunk whose branching is learned with Gumbel-softmax parent choices (Guo et al. 2020)."""

    sharing: Literal["ltb"] = Field(description='`ltb`')
    trunk: LayerList = Field(min_length=1, description='The layers of the branching trunk (each node is a copy of its layer).')
    branches: Union[PositiveInt, list[PositiveInt], None] = Field(
        None, description='Nodes per trunk layer: one count for every layer, or a list with one count per layer '
        '(default: one node per task at every layer).')
    temperature: PositiveFloat = Field(1.0, description='Gumbel-softmax temperature.')
    hard: bool = Field(True, description='Straight-through one-hot samples (else soft mixtures) in training.')
    head: LayerList = Field([], description="Each task's head after its chosen last-layer node; the output layer is inferred.")


def branch_counts(structure, num_tasks: int) -> list[int]:
    if structure.branches is None:
        return [num_tasks] * len(structure.trunk)
    if isinstance(structure.branches, int):
        return [structure.branches] * len(structure.trunk)
    return list(structure.branches)


@SHARING.register
class LTB(SharingPattern):
    """Learned branching: each node and task head picks its parent by Gumbel-softmax; a tree at the end."""

    name = "ltb"
    Params = LTBStructure
    starter = starter_body("""
# ltb: each trunk layer has one node per task; each node picks its parent by Gumbel-softmax.
# The tree it settles on is printed at the end of training.
structure:
  sharing: ltb
  trunk:
    - {dense: {units: 32, activation: relu}}
    - {dense: {units: 16, activation: relu}}
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern ltb`

    def check(self, structure, view):
        if isinstance(structure.branches, list) and len(structure.branches) != len(structure.trunk):
            view.report("PT230", f"ltb has {len(structure.branches)} branch counts for {len(structure.trunk)} trunk "
                        "layers", ("structure", "branches"),
                        hint=f"give one count per trunk layer, or one number for all {len(structure.trunk)}")
        else:
            tasks = len(view.task_names)
            extra = [count for count in branch_counts(structure, tasks) if count > tasks]
            if extra and tasks:
                view.report("PT215", f"ltb with {max(extra)} nodes in a layer for {tasks} task"
                            f"{'s' if tasks != 1 else ''}: the discovered tree uses at most {tasks} nodes per layer "
                            "(one path per task); the others only cost compute", ("structure", "branches"),
                            hint=f"use at most {tasks} nodes per layer (the default: one per task)")
        shape = one_input_shape(view, self.name)
        out = check_layers(view, structure.trunk, shape, ("structure", "trunk"))
        check_heads(view, structure.head, out)

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import LayerPlan, ParamGroup, layer_plans

        names, notes, groups = list(tasks), [], []
        trunk = infer_layers(structure.trunk, input_shape, "structure.trunk")
        counts = branch_counts(structure, len(names))
        for l, (plan, count) in enumerate(zip(trunk, counts)):
            groups.append(ParamGroup(f"trunk[{l}]", names, len(names) > 1, count * plan.param_count,
                                     layer_plans([plan]), note=f"{count} node{'s' if count != 1 else ''} x "
                                     f"{plan.param_count:,}; which tasks each serves is learned"))
        logits = sum(counts[l] * counts[l - 1] for l in range(1, len(counts)))
        if logits:
            groups.append(ParamGroup("branching", names, len(names) > 1, logits,
                                     [LayerPlan("branching", (counts[l], counts[l - 1]), counts[l] * counts[l - 1])
                                      for l in range(1, len(counts))], note="parent logits of every node"))
        for n in names:
            groups.append(ParamGroup(f"branch[{n}]", [n], False, counts[-1], [LayerPlan("branching", (counts[-1],),
                                     counts[-1])], note=f"{n}'s head picks one of the last layer's nodes"))
        notes.append("the run report (and `polytask train`'s output) shows the discovered tree")
        out = final_shape(trunk, input_shape)
        return groups + plan_heads(structure.head, tasks, out, notes, "the trunk output"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import LTBNet

        return LTBNet(structure.trunk, branch_counts(structure, num_tasks), structure.temperature, structure.hard,
                      structure.head, groups, num_tasks, mean, std)
