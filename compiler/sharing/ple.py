"""`ple`: progressive layered extraction (Tang et al. 2020, sec. 4.3): `levels` stacked CGC extraction networks.

Level j has shared experts and `experts.per_task` experts per task (all with the
`experts.layers`, applied to that level's input). Task t's experts read t's representation
from level j-1, the shared experts the shared representation (both are x at level 1).
Task t's gate, from t's representation, mixes [shared experts, t's experts] into t's next
representation (eq. 4-5); below the last level a shared gate, from the shared
representation, mixes [shared experts, every task's experts] into the next shared one.
Task t's tower reads its last-level representation.

So below the last level every module feeds every task (through the shared gate): `plan`
lists which tasks use each group, and PCGrad-like methods treat those as shared.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from polytask.compiler.sharing import SharingPattern
from polytask.compiler.sharing._experts import ExtractionExperts, check_experts, plan_extraction, starter_body
from polytask.spec.registry import SHARING
from polytask.spec.types import PositiveInt, StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class PLEStructure(StrictModel):
    """`levels` stacked CGC extraction networks with shared gates below the last (Tang et al. 2020)."""

    sharing: Literal["ple"] = Field(description='`ple`')
    experts: ExtractionExperts = Field(description='Shared and task-specific experts of each level.')
    levels: PositiveInt = Field(2, description='Extraction levels (1 is CGC).')
    head: LayerList = Field([], description="Each task's tower after the last level; the output layer is inferred.")


@SHARING.register
class PLE(SharingPattern):
    """Stacked extraction networks: shared and task experts per level, shared gates between levels."""

    name = "ple"
    Params = PLEStructure
    starter = starter_body("""
# ple: `levels` CGC extraction networks, with a shared gate between levels.
structure:
  sharing: ple
  levels: 2
  experts: {shared: 1, per_task: 1, layers: [{dense: {units: 16, activation: relu}}]}
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern ple`

    def check(self, structure, view):
        check_experts(view, structure, self.name, structure.levels)

    def plan(self, structure, tasks, input_shape):
        return plan_extraction(structure, tasks, input_shape, structure.levels)

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import ExtractionNet

        e = structure.experts
        return ExtractionNet(e.layers, e.shared, e.per_task, structure.levels, structure.head, groups, num_tasks,
                             mean, std)
