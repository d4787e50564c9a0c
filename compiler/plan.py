"""The plan: what the compiler will build for a spec, resolved without TensorFlow.

Per task: input and output shapes and the inferred output layer (units from loss and
target). Parameter groups: which parameters exist and which tasks use them (`trunk`
shared by all tasks, `head[<task>]` per task, `task_embedding`, ...), with parameter counts
computed from the layer configs in pure Python. `polytask plan` prints it; the compiler
builds exactly this and a test checks the counts against the built Keras model.

Counts follow Keras' `count_params` (every weight, including batch-norm moving statistics).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Optional

from polytask.compiler.layers import LayerStackError, final_shape, flat_size, infer_layers, output_layer
from polytask.errors import PolytaskError
from polytask.spec.facts import input_columns, input_shape
from polytask.spec.registry import LOSSES


@dataclass
class TaskPlan:
    name: str
    dataset: str
    target: str
    loss: str
    loss_params: dict
    metrics: list[str]
    weight: float
    input_columns: list[str]
    input_shape: tuple
    output_units: int
    output_shape: tuple
    label_width: int
    head_group: str  # tasks with the same head shape share one stacked parameter tensor
    sampling_rate: Optional[float] = None


@dataclass
class LayerPlan:
    kind: str
    output_shape: tuple
    params: int


@dataclass
class ParamGroup:
    name: str
    tasks: list[str]
    shared: bool
    params: int
    layers: list[LayerPlan] = field(default_factory=list)
    note: str = ""


@dataclass
class Plan:
    name: str
    sharing: str
    tasks: dict[str, TaskPlan]
    groups: list[ParamGroup]
    descriptor: str = "none"
    meta: Optional[dict] = None
    notes: list[str] = field(default_factory=list)

    @property
    def task_names(self) -> list[str]:
        return list(self.tasks)

    @property
    def totals(self) -> dict[str, int]:
        shared = sum(g.params for g in self.groups if g.shared)
        specific = sum(g.params for g in self.groups if not g.shared)
        return {"shared": shared, "task_specific": specific, "total": shared + specific}

    def to_dict(self) -> dict[str, Any]:
        if self.meta is not None:
            return {"name": self.name, "sharing": self.sharing, **self.meta}
        return {
            "name": self.name,
            "sharing": self.sharing,
            "descriptor": self.descriptor if self.sharing == "pooled" else None,
            "tasks": {
                name: {**{k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(t).items() if k != "name"}}
                for name, t in self.tasks.items()
            },
            "parameter_groups": [
                {
                    "name": g.name,
                    "tasks": g.tasks,
                    "shared": g.shared,
                    "params": g.params,
                    "layers": [{"kind": l.kind, "output_shape": list(l.output_shape), "params": l.params} for l in g.layers],
                    **({"note": g.note} if g.note else {}),
                }
                for g in self.groups
            ],
            "totals": self.totals,
            "notes": self.notes,
        }


# --------------------------------------------------------------------------- inputs


def input_shape_of(columns: list[str], info: dict) -> tuple:
    """Same rule as Table.features and `polytask check` (`polytask.spec.facts.input_shape`)."""
    return input_shape(columns, info.get)


def _column_info(loaded, name: str, allow_code: bool, cache: dict) -> dict:
    if name not in cache:
        from polytask.compiler.data import describe_table

        dataset = loaded.spec.datasets.get(name)
        if dataset is None:
            raise PolytaskError(f"unknown dataset '{name}'", hint=f"declared datasets: {', '.join(loaded.spec.datasets)}")
        cache[name] = describe_table(name, dataset, loaded, allow_code=allow_code)
    return cache[name]


def _targets_by_dataset(spec) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for task in spec.tasks.values():
        out.setdefault(task.dataset, set()).add(task.target)
    return out


def resolve_task(loaded, name: str, task, info: dict) -> TaskPlan:
    """Shapes, output layer and label width of one task, from its dataset's column info."""
    spec = loaded.spec
    if task.target not in info:
        import difflib

        close = difflib.get_close_matches(task.target, list(info), n=1)
        raise PolytaskError(
            f"task '{name}': dataset '{task.dataset}' has no column '{task.target}'",
            hint=(f"did you mean '{close[0]}'? " if close else "") + f"columns are: {', '.join(info)}",
        )
    targets = _targets_by_dataset(spec)[task.dataset]
    # One rule for check, plan and the table (a csv column called `x` is not special), so the
    # plan's shapes always match the table the model is fed from.
    columns = input_columns(spec.datasets[task.dataset], task.features or None, targets, info)
    for column in columns:
        if column not in info:
            raise PolytaskError(f"task '{name}': input column '{column}' is not in dataset '{task.dataset}'",
                                hint=f"columns are: {', '.join(info)}")
    loss, params = LOSSES.get(task.loss_name), task.loss_params
    target_info = info[task.target]
    problem = loss.target_problem(params, target_info, task.target)
    if problem is not None:
        raise PolytaskError(f"task '{name}': {problem[0]}", hint=problem[1])
    units = loss.output_units(params, target_info)
    return TaskPlan(
        name=name,
        dataset=task.dataset,
        target=task.target,
        loss=task.loss_name,
        loss_params=params.model_dump(mode="json"),
        metrics=list(task.metrics),
        weight=float(task.weight),
        input_columns=columns,
        input_shape=input_shape_of(columns, info),
        output_units=units,
        output_shape=(units,),
        label_width=loss.label_width(params, target_info),
        head_group="",
        sampling_rate=task.sampling_rate,
    )


# --------------------------------------------------------------------------- plans


def head_signature(head_layers, units: int) -> str:
    """Tasks whose heads have this same signature are stacked into one parameter tensor."""
    return "|".join(f"{l.kind}:{l.params.model_dump_json()}" for l in head_layers) + f"|out:{units}"


def _layers(layers, input_shape: tuple, where: str, form: str = "keras") -> list:
    """The one shape inference (`polytask.compiler.layers.infer_layers`), its errors as PolytaskErrors."""
    try:
        return infer_layers(layers, input_shape, where, form)
    except LayerStackError as exc:
        raise PolytaskError(exc.message, hint=exc.hint) from None


def _layer_plans(plans) -> list[LayerPlan]:
    return [LayerPlan(p.kind, tuple(p.output_shape), p.param_count) for p in plans]


def _count(plans) -> int:
    return sum(p.param_count for p in plans)


def build_plan(loaded, *, allow_code: bool = False, column_info: Optional[dict] = None) -> Plan:
    """Resolve `loaded.spec` into a Plan. `column_info` (dataset -> {column: ColumnInfo}) skips describe_table."""
    spec = loaded.spec
    if spec.is_meta:
        return _meta_plan(loaded)
    if not spec.tasks:
        raise PolytaskError("the spec declares no tasks", hint="add at least one entry under `tasks:`")
    cache = dict(column_info or {})
    tasks = {name: resolve_task(loaded, name, task, _column_info(loaded, task.dataset, allow_code, cache))
             for name, task in spec.tasks.items()}
    names = list(tasks)
    shapes = {t.input_shape for t in tasks.values()}
    structure = spec.structure
    if len(shapes) > 1:
        listing = ", ".join(f"{n}: {list(t.input_shape)}" for n, t in tasks.items())
        raise PolytaskError(
            f"{structure.sharing} sharing needs one input space, but the tasks' inputs differ ({listing})",
            hint="give every task inputs of the same shape (`features:`), or train them separately",
        )
    input_shape = next(iter(shapes))
    groups: list[ParamGroup] = []
    notes: list[str] = []

    if structure.sharing == "hard":
        trunk = _layers(structure.trunk, input_shape, "structure.trunk")
        trunk_out = final_shape(trunk, input_shape)
        groups.append(ParamGroup("trunk", names, True, _count(trunk), _layer_plans(trunk)))
        head_in = (flat_size(trunk_out),)
        if len(trunk_out) > 1:
            notes.append(f"the trunk output {list(trunk_out)} is flattened to {list(head_in)} for the heads")
        signatures: dict[str, list[str]] = {}
        for name, t in tasks.items():
            signatures.setdefault(head_signature(structure.head, t.output_units), []).append(name)
        for group_index, members in enumerate(signatures.values()):
            first = tasks[members[0]]
            head = _layers(list(structure.head) + [output_layer(first.output_units)], head_in, "structure.head",
                           "stacked")
            per_head = _count(head)
            label = f"heads/{group_index}"
            for name in members:
                tasks[name].head_group = label
                groups.append(ParamGroup(f"head[{name}]", [name], False, per_head, _layer_plans(head),
                                         note=f"stacked in {label} ({len(members)} x {per_head:,})"))
    else:  # pooled
        units = {t.output_units for t in tasks.values()}
        if len(units) > 1:
            listing = ", ".join(f"{n}: {t.output_units}" for n, t in tasks.items())
            raise PolytaskError(
                f"pooled sharing needs one output space, but the tasks' outputs differ ({listing})",
                hint="use `sharing: hard` (one head per task), or tasks with the same target type",
            )
        model_in = input_shape
        descriptor = structure.descriptor
        if descriptor != "none" and len(input_shape) != 1:
            raise PolytaskError(
                f"a task descriptor ({descriptor}) is joined to vector inputs, but the input has shape {list(input_shape)}",
                hint="use descriptor: none for image inputs, or flatten them in the data",
            )
        if descriptor == "onehot":
            model_in = (input_shape[0] + len(names),)
            notes.append(f"a one-hot task id ({len(names)} values) is appended to the input")
        elif descriptor == "embedding":
            model_in = (input_shape[0] + structure.embedding_dim,)
            groups.append(ParamGroup(
                "task_embedding", names, False, len(names) * structure.embedding_dim,
                [LayerPlan("embedding", (structure.embedding_dim,), len(names) * structure.embedding_dim)],
                note=f"one learned {structure.embedding_dim}-vector per task, appended to the input",
            ))
        body = _layers(structure.model, model_in, "structure.model")
        body_out = final_shape(body, model_in)
        if len(body_out) > 1:
            notes.append(f"the model output {list(body_out)} is flattened before the output layer")
        out = _layers([output_layer(next(iter(units)))], (flat_size(body_out),), "output")
        groups.insert(0, ParamGroup("model", names, True, _count(body + out), _layer_plans(body + out)))
        for t in tasks.values():
            t.head_group = "model"
    weighting = [w.kind for w in spec.training.weighting]
    if "uncertainty" in weighting:
        groups.append(ParamGroup("weighting/uncertainty", names, False, len(names), [],
                                 note="one learned log-variance per task (Kendall et al. 2018)"))
    return Plan(name=spec.name, sharing=structure.sharing, tasks=tasks, groups=groups,
                descriptor=getattr(structure, "descriptor", "none"), notes=notes)


def _meta_plan(loaded) -> Plan:
    from polytask.compiler.meta.plan import meta_plan

    return Plan(name=loaded.spec.name, sharing="meta", tasks={}, groups=[], meta=dict(meta_plan(loaded)))


# --------------------------------------------------------------------------- text


def _tasks(count: int) -> str:
    return f"{count} task" + ("" if count == 1 else "s")


def _shape(shape) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def format_plan(plan: Plan, spec_path: str = "") -> str:
    """Terraform-plan style text for `polytask plan`."""
    if plan.meta is not None:
        return _format_meta(plan)
    lines = [f"polytask plan: {plan.name}" + (f"  ({spec_path})" if spec_path else ""), ""]
    pattern = plan.sharing + (f", task descriptor: {plan.descriptor}" if plan.sharing == "pooled" else "")
    lines.append(f"sharing: {pattern}")
    lines.append("")
    lines.append(f"tasks ({len(plan.tasks)}):")
    width = max(len(n) for n in plan.tasks)
    for name, t in plan.tasks.items():
        lines.append(
            f"  + {name.ljust(width)}  {t.dataset}.{t.target}  in {_shape(t.input_shape)} -> out {_shape(t.output_shape)}"
            f"  loss {t.loss}" + (f"  metrics {', '.join(t.metrics)}" if t.metrics else "") + (f"  weight {t.weight:g}" if t.weight != 1 else "")
        )
    lines.append("")
    lines.append("parameter groups:")
    shown_stacks = set()
    many = len(plan.groups) > 40
    for g in plan.groups:
        if many and g.name.startswith("head[") and g.note:
            stack = g.note.split(" ")[2]
            if stack in shown_stacks:
                continue
            shown_stacks.add(stack)
            members = [x for x in plan.groups if x.note.split(" ")[2:3] == [stack]]
            lines.append(f"  + heads {stack}: {len(members)} tasks x {g.params:,} = {len(members) * g.params:,} params (task-specific)")
            continue
        scope = f"shared by {_tasks(len(g.tasks))}" if g.shared else (f"task {g.tasks[0]}" if len(g.tasks) == 1 else "one per task")
        lines.append(f"  + {g.name}: {g.params:,} params ({scope})" + (f"  [{g.note}]" if g.note else ""))
        for layer in g.layers:
            lines.append(f"      {layer.kind:<11} -> {_shape(layer.output_shape):<14} {layer.params:>10,}")
    totals = plan.totals
    lines.append("")
    for note in plan.notes:
        lines.append(f"note: {note}")
    lines.append(
        f"Plan: {totals['total']:,} parameters ({totals['shared']:,} shared, {totals['task_specific']:,} task-specific) "
        f"for {_tasks(len(plan.tasks))}."
    )
    return "\n".join(lines)


def _scalar(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    return str(value)


def _format_meta(plan: Plan) -> str:
    lines = [f"polytask plan: {plan.name}", "", "sharing: meta"]

    def walk(value, indent):
        for key, item in value.items():
            if key in ("sharing", "name"):
                continue
            if isinstance(item, dict):
                lines.append(" " * indent + f"{key}:")
                walk(item, indent + 2)
            elif key == "layers" and isinstance(item, list) and all(isinstance(x, dict) for x in item):
                lines.append(" " * indent + "layers:")
                for layer in item:
                    shape = _shape(layer.get("output_shape", ()))
                    mark = "  (inferred)" if layer.get("inferred") else ""
                    lines.append(" " * (indent + 2) + f"+ {layer.get('kind', ''):<11} -> {shape:<14} "
                                 f"{layer.get('parameters', 0):>10,}{mark}")
            elif item is not None:  # a setting that does not apply to this algorithm is left out
                lines.append(" " * indent + f"{key}: {_scalar(item)}")

    walk(plan.meta, 2)
    counts = plan.meta.get("parameters") if isinstance(plan.meta, dict) else None
    if isinstance(counts, dict) and "total" in counts:
        lines.append("")
        lines.append(f"Plan: {counts['total']:,} parameters.")
    return "\n".join(lines)
