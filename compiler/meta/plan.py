"""`polytask plan` for meta specs: algorithm, inner loop, episode shape, parameter counts.

Pure Python: no TensorFlow and no data loading, so it is instant.
"""
from __future__ import annotations

from typing import Any

from polytask.compiler.meta.architecture import Architecture, build_architecture, layer_name
from polytask.compiler.meta.families import get_family
from polytask.errors import PolytaskError
from polytask.spec.registry import ALGORITHMS

def output_units(algorithm: str, description) -> int | None:
    """The inferred output layer: none for metric-based algorithms, `ways` for classes, 1 for regression."""
    if ALGORITHMS.get(algorithm).metric_based:
        return None
    if description.kind == "classification":
        return int(description.ways)
    return int(description.target_dim)


def resolve(loaded):
    """(family description, architecture) of a meta spec; PolytaskError when they do not fit."""
    spec = loaded.spec
    if spec.family is None:
        raise PolytaskError("a `sharing: meta` spec needs a `family:` (the task distribution)",
                            hint="e.g. family: {source: sinusoid, shots: 10, queries: 10}")
    structure = spec.structure
    description = get_family(spec.family.source).describe(spec.family, loaded)
    architecture = build_architecture(structure.model, description.input_shape,
                                      output_units(structure.algorithm, description),
                                      batch_norm_steps=batch_norm_steps(structure))
    return description, architecture


def batch_norm_steps(structure) -> int:
    """Sets of batch-norm weights: one per inner step with MAML++ per-step batch norm, else 1."""
    algorithm = ALGORITHMS.get(structure.algorithm)
    per_step = (structure.inner.per_step_batch_norm and not algorithm.metric_based
                and algorithm.implementation.supports("per_step_batch_norm"))
    return int(structure.inner.steps) if per_step else 1


def _adapted(algorithm, architecture: Architecture) -> list:
    """The parameters the inner loop adapts (the algorithm's `adapted_names`, from the plan)."""
    if algorithm.adapts is None:
        return []
    if algorithm.adapts == "head only":
        return architecture.head_params()
    fixed = {p.name for p in architecture.per_step_params()}
    return [p for p in architecture.params if p.name not in fixed]


def _learned_learning_rates(algorithm, inner, adapted: list) -> int:
    """Meta-learned inner learning rates: one per adapted entry (Meta-SGD), or one per adapted
    tensor and inner step (MAML++ LSLR)."""
    if algorithm.learned_learning_rates:
        return sum(p.size for p in adapted)
    if inner.learn_step_sizes and not algorithm.metric_based and algorithm.implementation.supports("learn_step_sizes"):
        return len(adapted) * int(inner.steps)
    return 0


def meta_plan(loaded) -> dict[str, Any]:
    """A JSON-ready description of what `polytask train` will build for a meta spec."""
    spec = loaded.spec
    structure = spec.structure
    description, architecture = resolve(loaded)
    algorithm = ALGORITHMS.get(structure.algorithm)
    inner = structure.inner
    adapted = _adapted(algorithm, architecture)
    meta_learned_lrs = _learned_learning_rates(algorithm, inner, adapted)
    episode = {
        "kind": description.kind,
        "input_shape": list(description.input_shape),
        "shots": description.shots,
        "queries": description.queries,
        "support_examples": description.support_size,
        "query_examples": description.query_size,
        "meta_batch": spec.training.meta_batch,
    }
    if description.ways is not None:
        episode["ways"] = description.ways
        episode["rotations"] = list(spec.family.rotations)
        episode["class_split"] = spec.family.class_split.model_dump()
    return {
        "sharing": structure.sharing,
        "algorithm": algorithm.name,
        "second_order": algorithm.second_order,
        "family": spec.family.source,
        "loss": spec.loss_name,  # check requires it (PT209)
        "inner_loop": None if algorithm.adapts is None else {
            "steps": inner.steps,
            "eval_steps": inner.eval_steps or inner.steps,
            "learning_rate": inner.learning_rate,
            "learned_learning_rates": algorithm.learned_learning_rates,
            "adapts": algorithm.adapts,
            # MAML++ per-step batch norm: one set of batch-norm weights per inner step
            "batch_norm_weight_sets": architecture.batch_norm_steps if architecture.batch_norm_steps > 1 else None,
        },
        "reptile_step_size": structure.reptile_step_size if algorithm.outer_step_size else None,
        "transductive_batch_norm": structure.transductive_batch_norm,
        "episode": episode,
        "layers": [
            {"name": layer_name(layer), "kind": layer.kind, "output_shape": list(layer.output_shape),
             "parameters": sum(p.size for p in architecture.layer_params(layer)), "inferred": layer.inferred}
            for layer in architecture.layers
        ],
        "parameters": {
            "model": architecture.param_count,
            "adapted_in_inner_loop": sum(p.size for p in adapted),
            "meta_learned_inner_learning_rates": meta_learned_lrs,
            "total": architecture.param_count + meta_learned_lrs,
        },
        "training": {"steps": spec.training.steps, "meta_batch": spec.training.meta_batch,
                     "eval_episodes": spec.training.eval_episodes},
    }


class MetaPlan:
    """The plan object a `MetaProgram` carries (`to_dict()` as the runtime expects)."""

    def __init__(self, content: dict):
        self.content = content

    def to_dict(self) -> dict:
        p = self.content["parameters"]
        return {**self.content, "totals": {"shared": p["total"], "task_specific": 0, "total": p["total"]}}
