"""`cross_stitch`: cross-stitch networks (Misra et al. 2016).

One column per task, each with the `trunk` layers and its own weights. After each stage in
`stages` (trunk layer positions; default: every layer with weights), a cross-stitch unit
linearly mixes the columns' activations with a learned T x T matrix (eq. 1):

    x~_t = sum_s alpha[t, s] x_s,

initialised with `alpha_same` on the diagonal and `alpha_diff` elsewhere (the paper's
(alpha_S, alpha_D) = (0.9, 0.1) for two tasks; by default alpha_diff = (1 - alpha_same) / (T - 1),
so each row is a convex combination as in the paper). Task t's head reads column t.

Column layers up to the last unit feed every task (through the mixing); later ones feed
their task alone, and `plan` says so.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Optional

from pydantic import Field

from polytask.compiler.layers import final_shape, infer_layers
from polytask.compiler.sharing import SharingPattern, check_layers, one_input_shape, report_repeated_stages
from polytask.compiler.sharing._experts import starter_body
from polytask.compiler.sharing.hard import check_heads, plan_heads
from polytask.spec.types import StrictModel
from polytask.spec.registry import SHARING

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList

Alpha = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]


class CrossStitchStructure(StrictModel):
    """One column per task, mixed by learned cross-stitch units after each stage (Misra et al. 2016)."""

    sharing: Literal["cross_stitch"] = Field(description='`cross_stitch`')
    trunk: LayerList = Field(min_length=1, description="Each task's column (every column has these layers, its own weights).")
    stages: Optional[list[Annotated[int, Field(strict=True, ge=0)]]] = Field(
        None, description='Trunk layer positions (from 0) after which a cross-stitch unit mixes the columns '
        '(default: after every layer with weights).')
    alpha_same: Alpha = Field(0.9, description="Initial weight of a column's own activations.")
    alpha_diff: Optional[Alpha] = Field(
        None, description="Initial weight of each other column's activations (default (1 - alpha_same) / (T - 1)).")
    head: LayerList = Field([], description="Each task's head after its column; the output layer is inferred.")


def stitch_stages(structure, input_shape: tuple) -> list[int]:
    """The trunk positions followed by a cross-stitch unit: `stages`, or every layer with weights."""
    if structure.stages is not None:
        return sorted(structure.stages)
    return [p.index for p in infer_layers(structure.trunk, input_shape, "structure.trunk") if p.param_count]


def alpha_diff(structure, num_tasks: int) -> float:
    if structure.alpha_diff is not None:
        return structure.alpha_diff
    return (1.0 - structure.alpha_same) / (num_tasks - 1) if num_tasks > 1 else 0.0


@SHARING.register
class CrossStitch(SharingPattern):
    """A column per task; learned linear mixing of the columns after each stage."""

    name = "cross_stitch"
    Params = CrossStitchStructure
    starter = starter_body("""
# cross_stitch: one column per task; learned units mix the columns after each stage.
structure:
  sharing: cross_stitch
  trunk:
    - {dense: {units: 32, activation: relu}}
    - {dense: {units: 16, activation: relu}}
  alpha_same: 0.9             # initial weight of a column's own activations
  head: [{dense: {units: 8, activation: relu}}]   # the output layer is inferred
""")  # `polytask init --pattern cross_stitch`

    def check(self, structure, view):
        depth = len(structure.trunk)
        for i, stage in enumerate(structure.stages or []):
            if stage >= depth:
                view.report("PT230", f"cross-stitch stage {stage} is past the trunk, whose layers are 0..{depth - 1}",
                            ("structure", "stages", i), hint="name trunk layer positions, counted from 0")
        report_repeated_stages(view, structure.stages, "cross-stitch")
        shape = one_input_shape(view, self.name)
        trunk_out = check_layers(view, structure.trunk, shape, ("structure", "trunk"))
        check_heads(view, structure.head, trunk_out)

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import LayerPlan, ParamGroup, layer_plans, param_count

        names, notes, groups = list(tasks), [], []
        trunk = infer_layers(structure.trunk, input_shape, "structure.trunk")
        stages = stitch_stages(structure, input_shape)
        last = max(stages, default=-1)
        mixed, alone = trunk[:last + 1], trunk[last + 1:]
        for n in names:
            if mixed:
                groups.append(ParamGroup(f"column[{n}]", names, len(names) > 1, param_count(mixed), layer_plans(mixed),
                                         note=f"{n}'s column up to the last cross-stitch unit"))
            if alone:
                groups.append(ParamGroup(f"column[{n}]/after", [n], False, param_count(alone), layer_plans(alone),
                                         note=f"{n}'s column after the last cross-stitch unit"))
        if stages:
            size = len(names) ** 2
            groups.append(ParamGroup("cross_stitch", names, True, len(stages) * size,
                                     [LayerPlan("cross_stitch", (len(names), len(names)), size) for _ in stages],
                                     note=f"a {len(names)} x {len(names)} unit after trunk layers "
                                          f"{', '.join(map(str, stages))}"))
        else:
            notes.append("no cross-stitch units: the columns are independent networks")
        out = final_shape(trunk, input_shape)
        return groups + plan_heads(structure.head, tasks, out, notes, "each column's output"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import CrossStitchNet

        return CrossStitchNet(structure.trunk, stitch_stages(structure, tuple(mean.shape)), structure.alpha_same,
                              alpha_diff(structure, num_tasks), structure.head, groups, num_tasks, mean, std)
