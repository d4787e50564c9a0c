"""`cgc`: customized gate control (Tang et al. 2020, "Progressive Layered Extraction (PLE)", sec. 4.2).

Experts shared by every task plus `experts.per_task` experts of each task (all with the
`experts.layers`). Task t's gate g_t(x) = softmax(W_t x) (eq. 2-3) mixes the shared experts
and t's own, and t's tower (the `head` layers and the inferred output layer) reads

    y_t = h_t( sum_e g_t(x)_e S_t(x)_e ),   S_t(x) = [shared experts(x), task t's experts(x)].

Shared experts get gradients from every task, a task's own experts and gate from it alone.
CGC is PLE with one level (`polytask.compiler.sharing.ple`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from polytask.compiler.sharing import SharingPattern
from polytask.compiler.sharing._experts import ExtractionExperts, check_experts, plan_extraction, starter_body
from polytask.spec.registry import SHARING
from polytask.spec.types import StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class CGCStructure(StrictModel):
    """Shared and task-specific experts, a gate per task over its own and the shared (Tang et al. 2020)."""

    sharing: Literal["cgc"] = Field(description='`cgc`')
    experts: ExtractionExperts = Field(description='Shared and task-specific experts.')
    head: LayerList = Field([], description="Each task's tower after its mixture; the output layer is inferred.")


@SHARING.register
class CGC(SharingPattern):
    """Shared plus task-specific experts; each task's gate mixes its own and the shared experts."""

    name = "cgc"
    Params = CGCStructure
    starter = starter_body("""
# cgc: shared experts plus each task's own; each task's gate mixes its own and the shared.
structure:
  sharing: cgc
  experts: {shared: 2, per_task: 1, layers: [{dense: {units: 16, activation: relu}}]}
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern cgc`

    def check(self, structure, view):
        check_experts(view, structure, self.name)

    def plan(self, structure, tasks, input_shape):
        return plan_extraction(structure, tasks, input_shape, 1)

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import ExtractionNet

        e = structure.experts
        return ExtractionNet(e.layers, e.shared, e.per_task, 1, structure.head, groups, num_tasks, mean, std)
