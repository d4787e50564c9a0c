"""`mtan`: multi-task attention network (Liu et al. 2019, "End-to-End Multi-Task Learning with Attention").

A shared convolutional trunk, and per task a soft attention module at each stage. The
trunk is cut into stages at `stages` (positions of conv2d layers; default: every conv2d).
At stage j, with u_j the input of the stage's conv layer and p_j its output, task t's
attention mask (sec. 3.1)

    a_j^t = g_j^t([u_j ; f_{j-1}(a^_{j-1}^t)])   (at j = 1: g_1^t(u_1))
    a^_j^t = a_j^t (.) p_j

with g = conv1x1 -> batch norm -> relu -> conv1x1 -> batch norm -> sigmoid (task t's own)
and f_j = conv3x3 -> batch norm -> relu (shared by the tasks), followed by max pooling to the
next stage's size. Trunk layers after the last stage run, with their shared weights, on each
task's attended features; task t's head reads the result.

Conv trunks only: `check` refuses vector inputs, trunks without conv2d, stage convs that
change the spatial size (u and p must line up) and stage sizes that do not divide.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal, Optional

from pydantic import Field

from polytask.compiler.layers import final_shape, infer_layers
from polytask.compiler.sharing import SharingPattern, check_layers, one_input_shape, report_repeated_stages
from polytask.compiler.sharing.hard import check_heads, plan_heads
from polytask.spec.registry import SHARING
from polytask.spec.types import StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList

CONV_HINT = "mtan attends over convolutional feature maps: give it image inputs and a conv2d trunk, " \
            "or use `sharing: hard` / `mmoe` for vector inputs"


class MTANStructure(StrictModel):
    """A shared conv trunk with per-task soft attention modules at each stage (Liu et al. 2019)."""

    sharing: Literal["mtan"] = Field(description='`mtan`')
    trunk: LayerList = Field(min_length=1, description='The shared convolutional trunk.')
    stages: Optional[list[Annotated[int, Field(strict=True, ge=0)]]] = Field(
        None, description='Trunk positions (from 0) of the conv2d layers that end a stage (default: every conv2d).')
    head: LayerList = Field([], description="Each task's head after its attended features; the output layer is inferred.")


def stage_positions(structure) -> list[int]:
    if structure.stages is not None:
        return sorted(set(structure.stages))
    return [i for i, layer in enumerate(structure.trunk) if layer.kind == "conv2d"]


def attention_layers(channels: int):
    """g: conv1x1 -> batch norm -> relu -> conv1x1 -> batch norm -> sigmoid, `channels` wide."""
    from polytask.spec.layers import Layer

    conv = {"conv2d": {"filters": channels, "kernel_size": 1}}
    return [Layer.model_validate(v) for v in (conv, "batch_norm", {"activation": "relu"}, conv, "batch_norm",
                                              {"activation": "sigmoid"})]


def shared_block_layers(channels: int, pool: int):
    """f: conv3x3 -> batch norm -> relu (-> max pool to the next stage's size)."""
    from polytask.spec.layers import Layer

    layers = [{"conv2d": {"filters": channels, "kernel_size": 3}}, "batch_norm", {"activation": "relu"}]
    if pool > 1:
        layers.append({"max_pool2d": {"pool_size": pool}})
    return [Layer.model_validate(v) for v in layers]


def stage_shapes(structure, trunk_plans) -> list[tuple]:
    """(u_j, p_j) shapes of each stage."""
    return [(trunk_plans[s].input_shape, trunk_plans[s].output_shape) for s in stage_positions(structure)]


def stage_problem(structure, trunk_plans) -> Optional[tuple]:
    """(message, path, hint) of the first stage that cannot carry attention, else None."""
    shapes = stage_shapes(structure, trunk_plans)
    for j, (s, (u, p)) in enumerate(zip(stage_positions(structure), shapes)):
        path = ("structure", "stages", structure.stages.index(s)) if structure.stages else ("structure", "trunk", s)
        if u[:2] != p[:2]:
            return (f"mtan stage {j + 1} ends at trunk layer {s}, which changes the size {list(u[:2])} -> "
                    f"{list(p[:2])}; its input and output must line up for the attention mask", path,
                    "end stages at conv2d layers with `padding: same` and stride 1")
        if j:
            prev = shapes[j - 1][1]
            if prev[0] % p[0] or prev[1] % p[1] or prev[0] // p[0] != prev[1] // p[1]:
                return (f"mtan stage {j + 1} has size {list(p[:2])}, which does not divide stage {j}'s "
                        f"{list(prev[:2])} evenly", path, "pool by the same factor in height and width")
    return None


@SHARING.register
class MTAN(SharingPattern):
    """A shared conv trunk; each task attends over it with its own soft masks at each stage."""

    name = "mtan"
    Params = MTANStructure

    def check(self, structure, view):
        depth = len(structure.trunk)
        for i, s in enumerate(structure.stages or []):
            if s >= depth or structure.trunk[s].kind != "conv2d":
                what = "past the trunk" if s >= depth else f"a {structure.trunk[s].kind} layer"
                view.report("PT230", f"mtan stage {s} is {what}; stages end at conv2d layers",
                            ("structure", "stages", i), hint="name positions (from 0) of conv2d layers in the trunk")
                return
        report_repeated_stages(view, structure.stages, "mtan")
        if structure.stages == []:
            view.report("PT230", "mtan needs at least one stage, and `stages: []` names none", ("structure", "stages"),
                        hint="list the positions (from 0) of the trunk's conv2d layers where attention applies, "
                        "or leave `stages` out to use every conv2d layer")
            return
        if not stage_positions(structure):
            view.report("PT230", "mtan needs a convolutional trunk, but the trunk has no conv2d stage",
                        ("structure", "trunk"), hint=CONV_HINT)
            return
        shape = one_input_shape(view, self.name)
        if shape is not None and len(shape) != 3:
            view.report("PT230", f"mtan needs image inputs (height, width, channels), but the input has shape "
                        f"{list(shape)}", ("structure", "sharing"), hint=CONV_HINT)
            return
        out = check_layers(view, structure.trunk, shape, ("structure", "trunk"))
        if out is None:
            return
        problem = stage_problem(structure, infer_layers(structure.trunk, shape, "structure.trunk", with_weights=False))
        if problem is not None:
            view.report("PT230", problem[0], problem[1], hint=problem[2])
            return
        check_heads(view, structure.head, out)

    def plan(self, structure, tasks, input_shape):
        from polytask.compiler.plan import ParamGroup, layer_plans, param_count

        names, notes = list(tasks), []
        trunk = infer_layers(structure.trunk, input_shape, "structure.trunk")
        stages = stage_positions(structure)
        shapes = stage_shapes(structure, trunk)
        groups = [ParamGroup("trunk", names, True, param_count(trunk), layer_plans(trunk))]
        for j, (u, p) in enumerate(shapes):
            mask_in = (u[0], u[1], u[2] * (2 if j else 1))
            for n in names:
                plans = infer_layers(attention_layers(p[2]), mask_in, f"mtan attention {j + 1}")
                groups.append(ParamGroup(f"stage{j + 1}/attention[{n}]", [n], False, param_count(plans),
                                         layer_plans(plans), note=f"{n}'s mask over trunk layer {stages[j]}"))
            if j + 1 < len(shapes):
                nu, np_ = shapes[j + 1]
                plans = infer_layers(shared_block_layers(nu[2], p[0] // np_[0]), p, f"mtan block {j + 1}")
                groups.append(ParamGroup(f"stage{j + 1}/shared_block", names, True, param_count(plans),
                                         layer_plans(plans), note="f: carries each task's attended features on"))
        out = final_shape(trunk, input_shape)
        if stages[-1] + 1 < len(trunk):
            notes.append(f"trunk layers {stages[-1] + 1}.. run on each task's attended features (shared weights)")
        return groups + plan_heads(structure.head, tasks, out, notes, "each task's attended trunk output"), notes

    def build(self, structure, groups, num_tasks, mean, std):
        from polytask.compiler.multitask.experts import MTANNet

        trunk = infer_layers(structure.trunk, tuple(mean.shape), "structure.trunk", with_weights=False)
        shapes = stage_shapes(structure, trunk)
        blocks = [shared_block_layers(shapes[j + 1][0][2], shapes[j][1][0] // shapes[j + 1][1][0])
                  for j in range(len(shapes) - 1)]
        return MTANNet(structure.trunk, stage_positions(structure), [attention_layers(p[2]) for _, p in shapes],
                       blocks, structure.head, groups, num_tasks, mean, std)
