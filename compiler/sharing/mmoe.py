"""`mmoe`: multi-gate mixture of experts (Ma et al. 2018, "Modeling Task Relationships in
Multi-task Learning with Multi-gate Mixture-of-Experts").

A pool of `experts.count` experts f_e (each `experts.layers`) sees every input; task t has
its own softmax gate over the experts, g_t(x) = softmax(W_t x) (eq. 5, no bias), and its
tower (the `head` layers and the inferred output layer) reads the mixture

    y_t = h_t( sum_e g_t(x)_e f_e(x) ).

The experts are shared by every task; gates and towers are the task's own. The gates read
the flattened, standardised input.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from polytask.compiler.sharing import SharingPattern
from polytask.compiler.sharing._experts import (
    ExpertPool, check_experts, expert_group, expert_plans, gate_group, starter_body,
)
from polytask.compiler.sharing.hard import plan_heads
from polytask.spec.registry import SHARING
from polytask.spec.types import StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class MMoEStructure(StrictModel):
    """Shared experts mixed by one softmax gate per task, then the task's tower (Ma et al. 2018)."""

    sharing: Literal["mmoe"] = Field(description='`mmoe`')
    experts: ExpertPool = Field(description='The experts every task gates over.')
    head: LayerList = Field([], description="Each task's tower after its mixture; the output layer is inferred.")


@SHARING.register
class MMoE(SharingPattern):
    """Shared experts, a softmax gate per task over them, then the task's tower."""

    name = "mmoe"
    Params = MMoEStructure
    starter = starter_body("""
# mmoe: shared experts, a softmax gate per task over them, then each task's tower.
structure:
  sharing: mmoe
  experts:
    count: 8
    layers: [{dense: {units: 16, activation: relu}}]
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern mmoe`

    def check(self, structure, view):
        check_experts(view, structure, self.name)

    def plan(self, structure, tasks, input_shape):
        names, notes = list(tasks), []
        plans, expert_out = expert_plans(structure.experts.layers, input_shape)
        count = structure.experts.count
        groups = [expert_group("experts", names, count, plans)]
        groups += [gate_group(f"gate[{n}]", [n], input_shape, count, f"softmax over the {count} experts")
                   for n in names]
        return groups + plan_heads(structure.head, tasks, expert_out, notes, "the mixture of experts"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import MMoENet

        return MMoENet(structure.experts.layers, structure.experts.count, structure.head, groups, num_tasks,
                       mean, std)
