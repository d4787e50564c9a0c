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

from polytask.errors import PolytaskError
from polytask.spec.facts import input_columns, input_shape, targets_by_dataset
from polytask.spec.registry import LOSSES, SHARING, WEIGHTINGS
from polytask.spec.suggest import as_text, closest


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
    stack: str = ""  # the stacked parameter tensor this group is one slice of (hard heads), if any


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

    @property
    def built_layers(self) -> int:
        """Layers the program builds: the slices of one stacked head (same-shaped task heads) are one set."""
        stacks = {g.stack: len(g.layers) for g in self.groups if g.stack}
        return sum(len(g.layers) for g in self.groups if not g.stack) + sum(stacks.values())

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


def _column_info(loaded, name: str, allow_code: bool, cache: dict) -> dict:
    if name not in cache:
        from polytask.compiler.data import describe_table

        dataset = loaded.spec.datasets.get(name)
        if dataset is None:
            raise PolytaskError(f"unknown dataset '{name}'", hint=f"declared datasets: {', '.join(loaded.spec.datasets)}")
        cache[name] = describe_table(name, dataset, loaded, allow_code=allow_code)
    return cache[name]


def resolve_task(loaded, name: str, task, info: dict, targets: set) -> TaskPlan:
    """Shapes, output layer and label width of one task, from its dataset's column info
    (`targets`: the columns some task of that dataset predicts)."""
    spec = loaded.spec
    if task.target not in info:
        close = closest(task.target, info)
        raise PolytaskError(
            f"task '{name}': dataset '{task.dataset}' has no column '{task.target}'",
            hint=(f"did you mean '{close}'? " if close else "") + f"columns are: {', '.join(info)}",
        )
    # One rule for check, plan and the table (a csv column called `x` is not special), so the
    # plan's shapes always match the table the model is fed from.
    columns = input_columns(spec.datasets[task.dataset], task.features, targets, info)
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
        input_shape=input_shape(columns, info.get),
        output_units=units,
        output_shape=(units,),
        label_width=loss.label_width(params, target_info),
        head_group="",
        sampling_rate=task.sampling_rate,
    )


# --------------------------------------------------------------------------- plans


def layer_plans(plans) -> list[LayerPlan]:
    return [LayerPlan(p.descriptor.label(p.params), tuple(p.output_shape), p.param_count) for p in plans]


def param_count(plans) -> int:
    return sum(p.param_count for p in plans)


class PlanView:
    """What a sharing pattern's `check` sees when planning: the resolved tasks; errors raise.

    The same `check` runs in `polytask check` over data facts (`polytask.spec.rules.RuleView`),
    so a rule and its message exist once; here the first error stops the plan, with its position.
    """

    def __init__(self, loaded, tasks: dict[str, TaskPlan]):
        self.loaded, self.tasks = loaded, tasks
        self.spec = loaded.spec
        self.task_names = list(tasks)

    def input_shape(self, name: str) -> tuple:
        return self.tasks[name].input_shape

    def output_units(self, name: str) -> int:
        return self.tasks[name].output_units

    def target(self, name: str) -> str:
        return self.tasks[name].target

    def same_inputs(self, a: str, b: str) -> bool:
        ta, tb = self.tasks[a], self.tasks[b]
        return ta.dataset == tb.dataset and ta.input_columns == tb.input_columns

    def declared(self, *path) -> bool:
        return self.loaded.source_map is not None and tuple(path) in self.loaded.source_map

    def check_file(self, value: str, path: tuple, what: str) -> None:
        from polytask.spec.data_checks import readable_file

        readable_file(value, self.loaded.base_dir, what,
                      lambda code, message, hint=None: self.report(code, message, path, hint=hint))

    def report(self, code, message, path, hint=None, prefer="value", severity=None) -> None:
        from polytask.spec.diagnostics import CODES, ERROR

        if (severity or CODES[code].severity) == ERROR:
            raise PolytaskError(message, hint=hint, where=self.loaded.where(*path))


def layer_notes(structure) -> list[str]:
    """The `plan_note` of every layer kind the structure's layer lists use (once each)."""
    from polytask.spec.layers import LayerBase

    notes = []
    for key in type(structure).model_fields:
        value = getattr(structure, key)
        if isinstance(value, list):
            for layer in value:
                note = layer.descriptor.plan_note if isinstance(layer, LayerBase) else None
                if note and note not in notes:
                    notes.append(note)
    return notes


def build_plan(loaded, *, allow_code: bool = False, column_info: Optional[dict] = None) -> Plan:
    """Resolve `loaded.spec` into a Plan. `column_info` (dataset -> {column: ColumnInfo}) skips describe_table.

    The sharing pattern plans itself (`polytask.compiler.sharing`): its `check` first, as
    `polytask check` runs it, then its parameter groups.
    """
    return SHARING.get(loaded.spec.structure.sharing).plan_spec(loaded, allow_code=allow_code,
                                                               column_info=column_info)


def plan_tasks(pattern, loaded, *, allow_code: bool = False, column_info: Optional[dict] = None) -> Plan:
    """A multi-task pattern's plan: resolve the tasks, run the pattern's `check` on them, then its `plan`."""
    spec = loaded.spec
    if not spec.tasks:
        raise PolytaskError("the spec declares no tasks", hint="add at least one entry under `tasks:`")
    cache = dict(column_info or {})
    targets = targets_by_dataset(spec.tasks)
    tasks = {name: resolve_task(loaded, name, task, _column_info(loaded, task.dataset, allow_code, cache),
                                targets[task.dataset])
             for name, task in spec.tasks.items()}
    names = list(tasks)
    structure = spec.structure
    pattern.check(structure, PlanView(loaded, tasks))
    groups, notes = pattern.plan(structure, tasks, next(iter(tasks.values())).input_shape)
    notes.extend(layer_notes(structure))
    for item in spec.training.weighting:
        learned = WEIGHTINGS.get(item.kind).plan_params(len(names))
        if learned is not None:
            groups.append(ParamGroup(f"weighting/{item.kind}", names, False, learned[0], [], note=learned[1]))
    return Plan(name=spec.name, sharing=structure.sharing, tasks=tasks, groups=groups,
                descriptor=getattr(structure, "descriptor", "none"), notes=notes)


def meta_program_plan(loaded) -> Plan:
    """A meta-learning spec's plan (`polytask.compiler.meta.plan`), in the Plan container."""
    from polytask.compiler.meta.plan import meta_plan

    return Plan(name=loaded.spec.name, sharing=loaded.spec.structure.sharing, tasks={}, groups=[],
                meta=dict(meta_plan(loaded)))


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
        if many and g.stack:
            stack = g.stack
            if stack in shown_stacks:
                continue
            shown_stacks.add(stack)
            members = [x for x in plan.groups if x.stack == stack]
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
    return as_text(value, yes_no=True, thousands=True)


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
