"""`dselect_k`: differentiable top-k expert selection per task (Hazimeh et al. 2021, "DSelect-k").

Shared experts as in MMoE, but task t's gate selects (at most) `k` of the n experts in a
way that becomes exactly sparse during training. Per example, each of k selectors has a
binary code z_i of m = ceil(log2 n) logits (z = Z_t x + c); with the smooth step
S(t) = 0 for t <= -gamma/2, 1 for t >= gamma/2, -2/gamma^3 t^3 + 3/(2 gamma) t + 1/2 between
(eq. 3), selector i's weights over the experts are r(z_i)_j = prod_l (S(z_il) if bit l of j
is 1 else 1 - S(z_il)) (eq. 4), and the expert weights q = sum_i softmax(alpha)_i r(z_i)
(eq. 6, alpha = A_t x + a). The tower reads sum_j q_j f_j(x).

The loss gains `entropy_weight` x the mean over rows of sum_i H(r(z_i)) (sec. 4, pushes the
selectors to one expert each); when n is not a power of 2 also the mean of
sum_i 1 / sum_j r(z_i)_j, so selectors leave the codes no expert has.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

from pydantic import Field

from polytask.compiler.sharing import SharingPattern
from polytask.compiler.sharing._experts import (
    ExpertPool, check_experts, expert_group, expert_plans, gate_params, starter_body,
)
from polytask.compiler.sharing.hard import plan_heads
from polytask.spec.registry import SHARING
from polytask.spec.types import NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class DSelectKStructure(StrictModel):
    """Shared experts, a per-task DSelect-k gate choosing k of them (Hazimeh et al. 2021)."""

    sharing: Literal["dselect_k"] = Field(description='`dselect_k`')
    experts: ExpertPool = Field(description='The experts every task selects from.')
    k: PositiveInt = Field(2, description='Experts each task selects (at most the number of experts).')
    gamma: PositiveFloat = Field(1.0, description='Width of the smooth step (its non-constant region).')
    entropy_weight: NonNegativeFloat = Field(1.0e-6, description="Weight of the selectors' entropy regulariser.")
    head: LayerList = Field([], description="Each task's tower after its mixture; the output layer is inferred.")


def code_bits(count: int) -> int:
    """m = ceil(log2 n): the logits of one selector's binary code."""
    return math.ceil(math.log2(count))


@SHARING.register
class DSelectK(SharingPattern):
    """Shared experts; each task's differentiable gate selects k of them per example."""

    name = "dselect_k"
    Params = DSelectKStructure
    starter = starter_body("""
# dselect_k: shared experts; each task's differentiable gate selects k of them per example.
structure:
  sharing: dselect_k
  k: 2                        # at most experts.count
  experts: {count: 8, layers: [{dense: {units: 16, activation: relu}}]}
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern dselect_k`

    def check(self, structure, view):
        count = structure.experts.count
        if count < 2:
            view.report("PT230", "dselect_k selects among experts, but there is only 1",
                        ("structure", "experts", "count"), hint="use `count: 2` or more (or `sharing: hard`)")
        elif structure.k > count:
            view.report("PT230", f"dselect_k selects k = {structure.k} experts per task, but there are only {count}",
                        ("structure", "k"), hint=f"use `k` of at most {count}, or more experts")
        check_experts(view, structure, self.name)

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import LayerPlan, ParamGroup

        names, notes = list(tasks), []
        plans, expert_out = expert_plans(structure.experts.layers, input_shape)
        count, k = structure.experts.count, structure.k
        bits = code_bits(count)
        groups = [expert_group("experts", names, count, plans)]
        z, alpha = gate_params(input_shape, k * bits, bias=True), gate_params(input_shape, k, bias=True)
        for n in names:
            groups.append(ParamGroup(f"gate[{n}]", [n], False, z + alpha,
                                     [LayerPlan("gate", (k * bits,), z), LayerPlan("gate", (k,), alpha)],
                                     note=f"{k} selectors' {bits}-bit codes over {count} experts, and their weights"))
        return groups + plan_heads(structure.head, tasks, expert_out, notes, "the mixture of experts"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import DSelectKNet

        return DSelectKNet(structure.experts.layers, structure.experts.count, structure.k, structure.gamma,
                           structure.entropy_weight, structure.head, groups, num_tasks, mean, std)
