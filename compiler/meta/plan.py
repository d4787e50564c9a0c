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
                                      output_units(structure.algorithm, description))
    return description, architecture


def _adapted(algorithm, architecture: Architecture) -> int:
    if algorithm.adapts is None:
        return 0
    if algorithm.adapts == "head only":
        return sum(p.size for p in architecture.head_params())
    return architecture.param_count


def meta_plan(loaded) -> dict[str, Any]:
    """A JSON-ready description of what `polytask train` will build for a meta spec."""
    spec = loaded.spec
    structure = spec.structure
    description, architecture = resolve(loaded)
    algorithm = ALGORITHMS.get(structure.algorithm)
    inner = structure.inner
    meta_learned_lrs = architecture.param_count if algorithm.learned_learning_rates else 0
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
            "adapted_in_inner_loop": _adapted(algorithm, architecture),
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
