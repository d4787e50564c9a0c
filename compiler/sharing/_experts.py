"""What the mixture-of-experts patterns (mmoe, cgc, ple, dselect_k) share, without TensorFlow.

- the `experts:` mappings of the spec (`ExpertPool`: a pool every task gates over;
  `ExtractionExperts`: shared plus task-specific experts, CGC/PLE);
- their checks (one input space, expert layers that fit, heads that fit the mixture);
- plan groups for experts and gates, with the tasks that use each.

The networks are in `polytask.compiler.multitask.experts`. Every expert of a pool has the
same layers (`layers`, applied to the pool's input); a gate is a linear map of the
flattened input to one logit per expert it mixes (no bias, as in the papers' equations,
except where a paper's gate has one).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from pydantic import Field

from polytask.compiler.layers import final_shape, flat_size, infer_layers
from polytask.compiler.sharing import check_layers, one_input_shape
from polytask.compiler.sharing.hard import check_heads
from polytask.spec.types import PositiveInt, StrictModel

if TYPE_CHECKING:  # resolved when the spec models are built (see Registry.tagged_union)
    from polytask.spec.layers import LayerList


class ExpertPool(StrictModel):
    """A pool of experts every task's gate mixes."""

    count: PositiveInt = Field(8, description='Number of experts.')
    layers: LayerList = Field(min_length=1, description="Each expert's layers (every expert has the same layers, its own weights).")


class ExtractionExperts(StrictModel):
    """Experts shared by every task plus experts of each task (CGC and PLE, Tang et al. 2020)."""

    shared: PositiveInt = Field(1, description='Experts shared by every task (per level).')
    per_task: PositiveInt = Field(1, description='Experts of each task (per level).')
    layers: LayerList = Field(min_length=1, description="Each expert's layers (every expert has the same layers, its own weights).")


def check_experts(view, structure, pattern: str, levels: int = 1) -> Optional[tuple]:
    """One input space, expert layers that fit each level's input and heads that fit the
    last level's output (returned; None when unknown)."""
    shape = one_input_shape(view, pattern)
    for _ in range(levels):
        shape = check_layers(view, structure.experts.layers, shape, ("structure", "experts", "layers"))
    check_heads(view, structure.head, shape)
    return shape


def expert_plans(layers, input_shape: tuple, where: str = "structure.experts.layers"):
    """(layer plans of one expert, its output shape)."""
    plans = infer_layers(layers, input_shape, where)
    return plans, final_shape(plans, input_shape)


def expert_group(name: str, users: list, count: int, plans, note: str = ""):
    """A ParamGroup of `count` experts with the same layers (`plans`), used by `users`."""
    from polytask.compiler.plan import ParamGroup, layer_plans, param_count

    per = param_count(plans)
    detail = f"{experts_of(count)} x {per:,}"
    return ParamGroup(name, list(users), len(users) > 1, count * per, layer_plans(plans),
                      note=detail + (f"; {note}" if note else ""))


def experts_of(count: int, whose: str = "") -> str:
    """'1 expert', '3 shared experts'."""
    return f"{count} {whose + ' ' if whose else ''}expert{'s' if count != 1 else ''}"


def gate_params(input_shape: tuple, outputs: int, bias: bool = False) -> int:
    return flat_size(input_shape) * outputs + (outputs if bias else 0)


def gate_group(name: str, users: list, input_shape: tuple, outputs: int, note: str, bias: bool = False):
    """A ParamGroup of one gate: a linear map of the flattened `input_shape` to `outputs` logits."""
    from polytask.compiler.plan import LayerPlan, ParamGroup

    size = gate_params(input_shape, outputs, bias)
    return ParamGroup(name, list(users), len(users) > 1, size, [LayerPlan("gate", (outputs,), size)], note=note)


def extraction_users(levels: int, names: list) -> dict:
    """Which tasks use each module of a `levels`-level PLE (Tang et al. 2020; CGC is one level).

    Level j < L mixes every task's experts into the shared representation, which every task
    reads at level j+1; so only the last level's task experts, and the task gates of the last
    two levels, belong to one task."""
    users = {}
    for j in range(1, levels + 1):
        users[f"level{j}/shared_experts"] = list(names)
        for n in names:
            users[f"level{j}/experts[{n}]"] = list(names) if j < levels else [n]
            users[f"level{j}/gate[{n}]"] = list(names) if j < levels - 1 else [n]
        if j < levels:
            users[f"level{j}/shared_gate"] = list(names)
    return users


def plan_extraction(structure, tasks: dict, input_shape: tuple, levels: int):
    """(groups, notes) of CGC (levels 1) or PLE: per level, the shared experts, each task's
    experts and gate, and (below the last level) the shared gate; then the towers."""
    from polytask.compiler.sharing.hard import plan_heads

    names, notes, groups = list(tasks), [], []
    experts = structure.experts
    users = extraction_users(levels, names)
    shape = tuple(input_shape)
    prefix = (lambda j: f"level{j}/") if levels > 1 else (lambda j: "")
    for j in range(1, levels + 1):
        plans, out = expert_plans(experts.layers, shape)
        groups.append(expert_group(f"{prefix(j)}shared_experts", users[f"level{j}/shared_experts"], experts.shared,
                                   plans))
        for n in names:
            groups.append(expert_group(f"{prefix(j)}experts[{n}]", users[f"level{j}/experts[{n}]"],
                                       experts.per_task, plans))
        for n in names:
            mixed = experts.shared + experts.per_task
            groups.append(gate_group(f"{prefix(j)}gate[{n}]", users[f"level{j}/gate[{n}]"], shape, mixed,
                                     f"softmax over {experts_of(experts.shared, 'shared')} and "
                                     f"{n}'s {experts_of(experts.per_task)}"))
        if j < levels:
            mixed = experts.shared + len(names) * experts.per_task
            groups.append(gate_group(f"{prefix(j)}shared_gate", users[f"level{j}/shared_gate"], shape, mixed,
                                     f"softmax over all {mixed} experts of the level"))
        shape = out
    return groups + plan_heads(structure.head, tasks, shape, notes, "the last level's mixture"), notes


SYNTHETIC_TASKS = """
# Named datasets; tasks refer to them by name. Sources: <<source>>
# (python runs code: opt-in). Relative paths resolve against this file's folder.
datasets:
  mmoe:
    source: synthetic
    # MMoE's synthetic regression tasks (Ma et al. 2018): the label correlation is a knob
    generator: {kind: mmoe, tasks: 2, input_dim: 100, correlation: 0.5}
    samples: 5000
    split: {train: 0.8, validation: 0.1, test: 0.1}

# A task is T_i = (dataset, target, loss), with optional metrics, a loss weight and a
# sampling rate (how often its batches are drawn; separate from the weight).
tasks:
  first: {dataset: mmoe, target: task_0, loss: mse, metrics: [rmse]}
  second: {dataset: mmoe, target: task_1, loss: mse, metrics: [rmse]}
"""

STARTER_TRAINING = """
training:
  steps: 3000
  batch_size: 128
  optimizer: {adam: {learning_rate: 1.0e-3}}
  sampling: proportional      # uniform | proportional | {temperature: 2.0}
  weighting: equal            # or a list of: <<weighting>>
  eval_every: 250
  checkpoint_every: 1000
  early_stopping: {metric: loss, patience: 5}
"""


def starter_body(structure: str, tasks: str = SYNTHETIC_TASKS) -> str:
    """The `polytask init --pattern <name>` body of a soft-sharing pattern: data that needs no
    files, the pattern's commented `structure:` block, and the usual training settings."""
    return tasks + "\n" + structure.strip("\n") + "\n" + STARTER_TRAINING
