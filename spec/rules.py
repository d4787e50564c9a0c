"""Cross-field rules: what a spec must satisfy beyond the types of its fields.

Each rule is a function `rule(ctx)` registered with `@rule`; it reports every problem it
finds through `ctx.report(code, message, path, hint=...)` and never stops at the first one.
Rules run on whatever part of the spec validated (a task whose own fields are wrong is left
out of `ctx.spec` and skipped here, since the schema already reported it), so one run lists
every problem in the file. Rules that need data facts (target kinds, classes per folder)
stay silent when the facts are unknown (`--no-data`, `source: python`).

To add a rule: write a function below and decorate it; give it a code in
`polytask.spec.diagnostics.CODES` and a line in docs/spec-language.md.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from polytask.spec.diagnostics import MAX_REPORTS, Diagnostic
from polytask.spec.facts import UNKNOWN, Column, Facts, input_columns, input_shape, targets_by_dataset
from polytask.spec.registry import FAMILIES, LOSSES, METRICS, SHARING, SOURCES, WEIGHTINGS
from polytask.spec.source import SourceMap, dotted
from polytask.spec.splits import split_sizes
from polytask.spec.suggest import did_you_mean, one_of

RULES: list[tuple[Callable[["RuleContext"], None], tuple]] = []




def rule(*needs: str):
    """Register a rule; it is skipped when a top-level section it `needs` failed the schema."""

    def register(func: Callable[["RuleContext"], None]) -> Callable[["RuleContext"], None]:
        RULES.append((func, needs))
        return func

    return register


@dataclass
class RuleContext:
    """What rules see: the (possibly partial) spec, the raw data, positions and data facts."""

    spec: Any
    raw: dict
    source_map: SourceMap
    filename: str
    facts: dict = field(default_factory=dict)
    check_data: bool = True
    allow_code: bool = False
    base_dir: Optional[Path] = None
    diagnostics: list = field(default_factory=list)
    invalid: set = field(default_factory=set)  # top-level sections that failed the schema
    _targets: Optional[dict] = None
    suppressed: int = 0
    once: set = field(default_factory=set)  # keys of problems reported once per spec, not per task

    def report(self, code: str, message: str, path, hint: Optional[str] = None, prefer: str = "value",
               severity: Optional[str] = None) -> None:
        if len(self.diagnostics) >= MAX_REPORTS:
            self.suppressed += 1
            return
        path = tuple(path)
        position = self.source_map.position(path, prefer)
        self.diagnostics.append(Diagnostic(code, message, file=self.filename, line=position.line,
                                           column=position.column, hint=hint, severity=severity or "",
                                           path=dotted(path) or None))

    def declared(self, section: str) -> dict:
        value = self.raw.get(section)
        return value if isinstance(value, dict) else {}

    # -- data knowledge
    def column(self, dataset_name: str, column: str) -> Optional[Column]:
        facts: Facts = self.facts.get(dataset_name) or Facts()
        if facts.columns is None:
            return None
        return facts.columns.get(column)

    def columns_known(self, dataset_name: str) -> bool:
        facts = self.facts.get(dataset_name)
        return bool(facts and facts.known)

    def features_of(self, task_name: str, task) -> Optional[list[str]]:
        """The input columns of a task, or None when they cannot be known (the planner's rule too)."""
        dataset = self.spec.datasets.get(task.dataset)
        if dataset is None:
            return None if task.features is None else list(task.features)
        facts: Facts = self.facts.get(task.dataset) or Facts()
        return input_columns(dataset, task.features, self.targets_of(task.dataset), facts.columns)

    def targets_of(self, dataset_name: str) -> set:
        """Columns that some task of this dataset predicts (computed once per dataset)."""
        if self._targets is None:
            self._targets = targets_by_dataset(self.spec.tasks)
        return self._targets.get(dataset_name, set())

    def input_shape(self, task_name: str, task) -> Optional[tuple]:
        """The task's input shape (`polytask.spec.facts.input_shape`, as the planner computes it);
        columns the spec alone fixes (an image folder's `image`) count even when the data is not read."""
        dataset = self.spec.datasets.get(task.dataset)
        if dataset is None:
            return None
        features = self.features_of(task_name, task)
        if not features:
            return None
        if self.columns_known(task.dataset):
            return input_shape(features, lambda name: self.column(task.dataset, name))
        return input_shape(features, lambda name: SOURCES.get(dataset.source).spec_column(dataset, name))

    def output_units(self, task) -> Optional[int]:
        """Width of the inferred output layer, when the target is known well enough."""
        column = self.column(task.dataset, task.target) or UNKNOWN
        return LOSSES.get(task.loss_name).output_units(task.loss_params, column)


# --------------------------------------------------------------------------- names and references


@rule()
def task_names(ctx: RuleContext) -> None:
    """Task names become folder names, TensorBoard tags and SavedModel signatures: no case clashes."""
    seen: dict[str, str] = {}
    for name in ctx.declared("tasks"):
        if not isinstance(name, str):
            continue
        folded = name.lower()
        if folded in seen:
            ctx.report("PT201", f"task names '{seen[folded]}' and '{name}' differ only in case", ("tasks", name),
                       hint="task names become file and signature names; make them differ by more than case",
                       prefer="key")
        else:
            seen[folded] = name


@rule()
def dataset_references(ctx: RuleContext) -> None:
    declared = list(ctx.declared("datasets"))
    known = set(declared)
    for name, task in ctx.declared("tasks").items():
        if isinstance(task, dict) and isinstance(task.get("dataset"), str):
            ref = task["dataset"]
            if ref not in known:
                ctx.report("PT202", f"task '{name}' uses dataset '{ref}', which is not declared"
                           f"{did_you_mean(ref, declared)}", ("tasks", name, "dataset"),
                           hint=f"declared datasets: {one_of(declared)}" if declared else "add it under `datasets:`")
    for ref_path, value in family_dataset_refs(ctx):
        if value not in known:
            ctx.report("PT202", f"the family uses dataset '{value}', which is not declared"
                       f"{did_you_mean(value, declared)}", ("family", *ref_path),
                       hint=f"declared datasets: {one_of(declared)}" if declared else "add it under `datasets:`")


def family_dataset_refs(ctx: RuleContext) -> list[tuple[tuple, str]]:
    """(path below `family`, dataset name) of each dataset the family names, as written (even if invalid)."""
    family = ctx.raw.get("family")
    if not isinstance(family, dict) or family.get("source") not in FAMILIES:
        return []
    return FAMILIES.get(family["source"]).dataset_refs(family)


@rule()
def unused_datasets(ctx: RuleContext) -> None:
    used = set()
    for task in ctx.declared("tasks").values():
        if isinstance(task, dict) and isinstance(task.get("dataset"), str):
            used.add(task["dataset"])
    used.update(name for _, name in family_dataset_refs(ctx))
    for name in ctx.declared("datasets"):
        if name not in used:
            ctx.report("PT217", f"dataset '{name}' is declared but no task or family uses it", ("datasets", name),
                       prefer="key", hint="remove it, or refer to it from a task's `dataset:`")


# --------------------------------------------------------------------------- sharing patterns


@rule()
def sharing_pattern(ctx: RuleContext) -> None:
    raw = ctx.raw
    has_tasks, has_family = bool(ctx.declared("tasks")), raw.get("family") is not None
    structure = raw.get("structure") if isinstance(raw.get("structure"), dict) else {}
    sharing = structure.get("sharing") if "structure" in raw else "pooled"
    if sharing not in SHARING:
        sharing = None  # the schema already reported it; only the pattern-free check below applies
    if not has_tasks and not has_family:
        ctx.report("PT203", "the spec declares no `tasks` and no `family`: there is nothing to learn", (),
                   hint="add `tasks:` (multi-task: pooled, hard or soft sharing) or `family:` (meta-learning, sharing meta)")
        return
    sharing_path = ("structure", "sharing") if "sharing" in structure else ()
    if sharing is None:
        return
    multi_task = SHARING.where(lambda d: d.learns_from == "tasks")
    if SHARING.get(sharing).learns_from == "family":
        if not has_family:
            ctx.report("PT209", "meta sharing learns from a task family, and the spec has no `family:`", sharing_path,
                       hint="add `family:` (sinusoid, or classes from an image_folder dataset)")
        if "loss" not in raw and has_family:
            ctx.report("PT209", "meta sharing needs the family's loss: add a top-level `loss:`", ("family",),
                       prefer="key", hint="`loss: mse` for a regression family, `loss: cross_entropy` for classes")
        if has_tasks:
            ctx.report("PT215", "`tasks` are not used with meta sharing (it learns from `family`)", ("tasks",),
                       prefer="key", hint=f"remove `tasks:`, or use sharing: {' / '.join(multi_task)} for "
                       "multi-task learning")
    else:
        if has_family:
            ctx.report("PT210", f"a task `family` is meta-learning, but sharing is {sharing}", ("family",),
                       prefer="key", hint="set `structure: {sharing: meta, ...}` or replace `family:` by `tasks:`")
        elif not has_tasks:
            ctx.report("PT210", f"{sharing} sharing needs `tasks:`", sharing_path)
        if "loss" in raw:
            ctx.report("PT215", "the top-level `loss` is the family's loss (meta only); tasks set their own",
                       ("loss",), prefer="key", hint="remove it, or set each task's `loss:`")
        if raw.get("metrics"):
            ctx.report("PT215", "the top-level `metrics` are the family's (meta only); tasks set their own",
                       ("metrics",), prefer="key")


@rule("structure")
def sharing_structure(ctx: RuleContext) -> None:
    """The pattern's own rules (input spaces, output widths, layers that do not fit): its descriptor's `check`."""
    structure = ctx.spec.structure
    SHARING.get(structure.sharing).check(structure, RuleView(ctx))


class RuleView:
    """What a sharing pattern's `check` sees in `polytask check`: the spec's data facts (None: unknown)."""

    static = True  # no TensorFlow: shapes that only Keras can compute stay unknown

    def __init__(self, ctx: RuleContext):
        self.ctx = ctx
        self.spec = ctx.spec
        self.task_names = list(ctx.spec.tasks)

    def input_shape(self, name: str) -> Optional[tuple]:
        return self.ctx.input_shape(name, self.spec.tasks[name])

    def output_units(self, name: str) -> Optional[int]:
        return self.ctx.output_units(self.spec.tasks[name])

    def target(self, name: str) -> str:
        return self.spec.tasks[name].target

    def same_inputs(self, a: str, b: str) -> bool:
        ta, tb = self.spec.tasks[a], self.spec.tasks[b]
        return ta.dataset == tb.dataset and self.ctx.features_of(a, ta) == self.ctx.features_of(b, tb)

    def declared(self, *path) -> bool:
        return tuple(path) in self.ctx.source_map

    def check_file(self, value: str, path: tuple, what: str) -> None:
        """PT301/PT306 at `path` when the file `value` names (relative to the spec's folder) cannot be read;
        only when data is checked (`check --no-data` trusts the paths)."""
        if self.ctx.check_data:
            from polytask.spec.data_checks import readable_file

            readable_file(value, self.ctx.base_dir or Path.cwd(), what,
                          lambda code, message, hint=None: self.report(code, message, path, hint=hint))

    def report(self, code, message, path, hint=None, prefer="value", severity=None) -> None:
        self.ctx.report(code, message, path, hint=hint, prefer=prefer, severity=severity)


# --------------------------------------------------------------------------- tasks: target, loss, metrics


@rule()
def task_targets_and_losses(ctx: RuleContext) -> None:
    for name, task in ctx.spec.tasks.items():
        dataset = ctx.spec.datasets.get(task.dataset)
        if dataset is None:
            continue
        base = ("tasks", name)
        source = SOURCES.get(dataset.source)
        problem = source.target_problem(dataset, task.target)
        if problem is not None:
            ctx.report("PT204", f"task '{name}': {problem[0]}", base + ("target",), hint=problem[1])
            continue
        if ctx.columns_known(task.dataset):
            columns = ctx.facts[task.dataset].columns
            missing_code = source.missing_column_code
            if task.target not in columns:
                ctx.report(missing_code, f"task '{name}': dataset '{task.dataset}' has no {source.column_noun} "
                           f"'{task.target}'{did_you_mean(task.target, columns)}", base + ("target",),
                           hint=f"columns: {one_of(columns)}")
                continue
            features = ctx.features_of(name, task) or []
            for i, feature in enumerate(features):
                if feature not in columns:
                    where = base + ("features", i) if task.features is not None else ("datasets", task.dataset)
                    ctx.report(missing_code if missing_code != "PT204" else "PT214",
                               f"task '{name}': input column '{feature}' is not in dataset "
                               f"'{task.dataset}'{did_you_mean(feature, columns)}", where,
                               hint=f"columns: {one_of(columns)}")
            for feature in features:
                _missing_inputs(ctx, task.dataset, feature, columns.get(feature))
            if task.target in features:
                where = base + ("features",) if task.features is not None else base + ("target",)
                ctx.report("PT214", f"task '{name}': target '{task.target}' is also an input feature "
                           "(the model would see the answer)", where, hint="remove it from the features")
        column = ctx.column(task.dataset, task.target)
        loss = LOSSES.get(task.loss_name)
        if column is not None:
            problem = loss.target_problem(task.loss_params, column, task.target)
            if problem is not None:
                ctx.report("PT205", f"task '{name}': {problem[0]}", base + ("loss",), hint=problem[1])
            elif loss.measures == "classification" and column.categorical and column.distinct == 1:
                whole = ctx.facts[task.dataset].rows is not None
                ctx.report("PT223", f"task '{name}': target '{task.target}' holds one class"
                           f"{'' if whole else ' in the rows the check sampled'}: the loss is 0 and "
                           "accuracy 1.0 from the first step; there is nothing to learn",
                           base + ("target",), severity=None if whole else "warning",
                           hint="check the target column (a classification target needs at least two classes), "
                           "or remove the task")
        _metrics_fit(ctx, f"task '{name}'", task.loss_name, task.loss_params, task.metrics, base + ("metrics",),
                     column)
    if ctx.invalid & {"structure", "family", "loss", "metrics"}:
        return
    if ctx.spec.family is not None and ctx.spec.loss is not None and ctx.spec.is_meta:
        _metrics_fit(ctx, "the family", ctx.spec.loss_name, ctx.spec.loss_params, ctx.spec.metrics, ("metrics",),
                     None)


def _missing_inputs(ctx: RuleContext, dataset: str, feature: str, column: Optional[Column]) -> None:
    """PT308 once per (dataset, column) for an input column with empty cells."""
    if column is None or not column.missing:
        return
    if ("PT308", dataset, feature) in ctx.once:
        return
    ctx.once.add(("PT308", dataset, feature))
    where = f" (first at {column.first_missing})" if column.first_missing else ""
    ctx.report("PT308", f"input column '{feature}' of dataset '{dataset}' has {column.missing:,} empty cell(s)"
               f"{where}; inputs may not be missing", ("datasets", dataset, "path"),
               hint="fill them or drop those rows; only target columns may have empty cells (those rows are "
               "left out of that task's loss)")


def _metrics_fit(ctx, who: str, loss_name: str, loss_params, metrics: list, path, column: Optional[Column]) -> None:
    loss = LOSSES.get(loss_name)
    for i, name in enumerate(metrics):
        metric = METRICS.get(name)
        if metric.measures != loss.measures:
            fitting = sorted(METRICS.where(lambda m: m.measures == loss.measures))
            ctx.report("PT206", f"{who}: metric {name} measures {metric.measures}, but the loss {loss_name} is a "
                       f"{loss.measures} loss", path + (i,), hint=f"use one of {one_of(fitting)}")
            continue
        problem = metric.problem(loss, loss_params, column)
        if problem is not None:
            ctx.report("PT206", f"{who}: {problem[0]}", path + (i,), hint=problem[1])
    duplicates = {m for m, n in Counter(metrics).items() if n > 1}
    for metric in sorted(duplicates):
        ctx.report("PT215", f"{who}: metric {metric} is listed more than once", path, prefer="key")


# --------------------------------------------------------------------------- families and meta-learning


@rule()
def ranges(ctx: RuleContext) -> None:
    """Settings each data source (and, through `synthetic`, each generator kind) checks on its
    own: its `spec_problems`."""
    for name, dataset in ctx.spec.datasets.items():
        for message, below, hint in SOURCES.get(dataset.source).spec_problems(dataset):
            ctx.report("PT107", message, ("datasets", name, *below), hint=hint)


@rule("loss")
def family_fits(ctx: RuleContext) -> None:
    """The family's own rules (its datasets, episodes that fit the data, the loss): its descriptor's `check`."""
    family = ctx.spec.family
    if family is not None:
        FAMILIES.get(family.source).check(family, ctx)


# --------------------------------------------------------------------------- training


def _task_count(ctx: RuleContext) -> int:
    """Tasks the user declared, counting ones with errors of their own (left out of ctx.spec.tasks),
    so a typo in one of two tasks does not add 'with one task it does nothing' warnings."""
    return max(len(ctx.spec.tasks), len(ctx.declared("tasks")))


@rule("training", "structure")
def weighting(ctx: RuleContext) -> None:
    training = ctx.spec.training
    raw_training = ctx.raw.get("training") if isinstance(ctx.raw.get("training"), dict) else {}
    if "weighting" not in raw_training:
        return
    list_form = isinstance(raw_training.get("weighting"), list)
    task_names = list(ctx.spec.tasks) or list(ctx.declared("tasks"))
    meta = ctx.spec.is_meta
    if meta:
        ctx.report("PT215", "loss weighting combines task losses; meta sharing has one family loss, so it is "
                   "ignored", ("training", "weighting"), prefer="key")
        return
    kinds = [w.kind for w in training.weighting]
    for i, item in enumerate(training.weighting):
        path = ("training", "weighting", i) if list_form else ("training", "weighting")
        transform = WEIGHTINGS.get(item.kind)
        for message, below, hint in transform.spec_problems(item.params, task_names):
            ctx.report("PT213", message, path + (item.kind, *below), prefer="key", hint=hint)
        if transform.needs_validation:
            without = sorted({task.dataset for task in ctx.spec.tasks.values()
                              if task.dataset in ctx.spec.datasets and ctx.spec.datasets[task.dataset].split.validation <= 0})
            if without:
                ctx.report("PT225", f"weighting {item.kind} learns its weights on the validation split, but dataset(s) "
                           f"{', '.join(without)} have none", path, prefer="key" if list_form else "value",
                           hint=f"give {without[0]} e.g. `split: {{train: 0.7, validation: 0.1, test: 0.2}}`")
        if transform.multi_task and 0 < _task_count(ctx) < 2:
            ctx.report("PT215", f"weighting {item.kind} balances several tasks; with one task it does nothing",
                       path, prefer="key" if list_form else "value")
    _gradient_spaces(ctx, list_form)
    for kind in sorted(k for k, n in Counter(kinds).items() if n > 1):
        ctx.report("PT107", f"weighting {kind} is listed more than once", ("training", "weighting"), prefer="key")
    for identity in dict.fromkeys(k for k in kinds if not WEIGHTINGS.get(k).reweights):
        if len(kinds) > 1:
            ctx.report("PT107", f"weighting `{identity}` means no reweighting; it cannot be combined with "
                       f"{one_of([k for k in kinds if k != identity])}", ("training", "weighting"), prefer="key",
                       hint=f"remove `{identity}`")


def warmup_problem(warmup_steps: int, steps: int, steps_from: str = "training.steps") -> Optional[tuple[str, str]]:
    """(message, hint) when the warm-up does not end before training does (PT218); `steps_from`
    names where the step count came from (`--steps` at train time)."""
    if warmup_steps > 0 and warmup_steps >= steps:
        return (f"warmup_steps ({warmup_steps}) is not below {steps_from} ({steps}): the learning rate never "
                "leaves warm-up", "shorten the warm-up" if steps_from == "training.steps"
                else f"pass {steps_from} above {warmup_steps}, or shorten training.schedule.warmup_steps")
    return None


def _representation_hint(transform) -> str:
    patterns = f"use {one_of(SHARING.where(lambda d: d.shared_representation))} sharing"
    switch = transform.representation_switch
    if switch:
        return f"{patterns}, or set `{switch}: false` to work on the shared parameters' gradients"
    return f"{patterns}, or pick a weighting that works on the shared parameters: {transform.name} has no other form"


def _gradient_spaces(ctx: RuleContext, list_form: bool) -> None:
    """Representation-gradient weightings need a shared representation, and one space per chain."""
    spaces = {}
    for i, item in enumerate(ctx.spec.training.weighting):
        transform = WEIGHTINGS.get(item.kind)
        params = item.params if item.params is not None else transform.default_params()
        if transform.uses_task_gradients(params):
            spaces[i] = transform.gradient_space(params)
    sharing = getattr(ctx.spec.structure, "sharing", None)
    for i, space in spaces.items():
        kind = ctx.spec.training.weighting[i].kind
        if space == "representation" and sharing and not SHARING.get(sharing).shared_representation:
            ctx.report("PT210", f"weighting {kind} uses gradients of the shared representation, which `{sharing}` "
                       f"sharing does not have", ("training", "weighting", i) if list_form else ("training", "weighting"),
                       prefer="key", hint=_representation_hint(WEIGHTINGS.get(kind)))
    if len(set(spaces.values())) > 1:
        ctx.report("PT107", "these weightings mix per-task gradients of the shared parameters and of the shared "
                   "representation", ("training", "weighting"), prefer="key",
                   hint="give every gradient method the same `rep_grad`")


@rule("training", "structure")
def training_settings(ctx: RuleContext) -> None:
    training = ctx.spec.training
    explicit = training.model_fields_set
    meta = ctx.spec.is_meta
    problem = warmup_problem(training.schedule.warmup_steps, training.steps)
    if problem:
        ctx.report("PT218", problem[0], ("training", "schedule", "warmup_steps"), hint=problem[1])
    if meta:
        for key in ("batch_size", "sampling"):
            if key in explicit:
                ctx.report("PT215", f"training.{key} is for multi-task training; meta sharing uses meta_batch "
                           "and the family's shots and queries", ("training", key), prefer="key")
    else:
        for key in ("meta_batch", "eval_episodes"):
            if key in explicit:
                ctx.report("PT215", f"training.{key} is for meta-learning; it has no effect with "
                           f"{ctx.spec.structure.sharing} sharing", ("training", key), prefer="key")
    sampling = training.sampling
    if not meta and _task_count(ctx) == 1 and "sampling" in explicit:
        ctx.report("PT215", "sampling mixes tasks; with one task it has no effect", ("training", "sampling"),
                   prefer="key")
    del sampling


@rule("training", "structure", "metrics", "loss")
def early_stopping(ctx: RuleContext) -> None:
    stopping = ctx.spec.training.early_stopping
    if stopping is None:
        return
    reported = {"loss"}
    meta = ctx.spec.is_meta
    if meta:
        reported.update(ctx.spec.metrics)
        if ctx.spec.loss:
            reported.add(ctx.spec.loss_name)
    for name, task in ctx.spec.tasks.items():
        reported.add(f"{name}/loss")
        reported.update(f"{name}/{m}" for m in task.metrics)
    if stopping.metric not in reported:
        ctx.report("PT216", f"early stopping watches '{stopping.metric}', which is not reported"
                   f"{did_you_mean(stopping.metric, sorted(reported))}", ("training", "early_stopping", "metric"),
                   hint=f"reported: {one_of(sorted(reported))}")
    if not meta:
        _validation_rows(ctx, stopping.metric)
    watched = stopping.metric.rsplit("/", 1)[-1]
    higher_better = watched in METRICS and METRICS.get(watched).higher_is_better
    if higher_better and stopping.mode == "min":
        ctx.report("PT215", f"'{stopping.metric}' is better when higher, but early stopping mode is min",
                   ("training", "early_stopping", "mode") if ("training", "early_stopping", "mode") in ctx.source_map
                   else ("training", "early_stopping"), hint="set `mode: max`")


def split_rows(ctx: RuleContext, dataset_name: str) -> tuple[Optional[int], Optional[int], Optional[int]]:
    """Rows per split (train, validation, test) of a dataset: from the row count when the
    data pass knows it, else only which splits are empty by their fraction (0) or unknown (None)."""
    dataset = ctx.spec.datasets[dataset_name]
    fractions = [dataset.split.train, dataset.split.validation, dataset.split.test]
    rows = (ctx.facts.get(dataset_name) or Facts()).rows
    if rows is not None:
        return tuple(split_sizes(rows, fractions))
    return tuple(0 if f == 0 else None for f in fractions)


def _validation_rows(ctx: RuleContext, metric: str) -> None:
    task = metric.rsplit("/", 1)[0] if "/" in metric else None
    names = [task] if task in ctx.spec.tasks else list(ctx.spec.tasks)
    datasets = sorted({ctx.spec.tasks[n].dataset for n in names} & set(ctx.spec.datasets))
    if not datasets or any(split_rows(ctx, d)[1] != 0 for d in datasets):
        return
    which = one_of([f"'{d}'" for d in datasets])
    ctx.report("PT222", f"early stopping watches '{metric}' on the validation split, and dataset {which} has no "
               "validation rows", ("training", "early_stopping"), prefer="key",
               hint="give the dataset a validation split (e.g. `split: {train: 0.7, validation: 0.1, test: 0.2}`), "
               "or remove early_stopping")


@rule("structure")
def test_rows(ctx: RuleContext) -> None:
    """A dataset the tasks learn from with no test rows: the run reports no test metrics for its tasks."""
    if ctx.spec.is_meta:
        return
    used = sorted({task.dataset for task in ctx.spec.tasks.values()} & set(ctx.spec.datasets))
    for name in used:
        if split_rows(ctx, name)[2] != 0:
            continue
        tasks = ", ".join(f"'{t}'" for t, task in ctx.spec.tasks.items() if task.dataset == name)
        rows = (ctx.facts.get(name) or Facts()).rows
        why = "its split has test 0" if ctx.spec.datasets[name].split.test == 0 else f"its {rows} row(s) leave none"
        path = ("datasets", name, "split") if ("datasets", name, "split") in ctx.source_map else ("datasets", name)
        ctx.report("PT224", f"dataset '{name}' has no test rows ({why}): training will report no test metrics "
                   f"for {'tasks' if ',' in tasks else 'task'} {tasks}", path, prefer="key",
                   hint="give it a test split (e.g. `split: {train: 0.8, test: 0.2}`) and enough rows, if you "
                   "want test metrics")


@rule("training", "datasets", "tasks")
def batch_fits_split(ctx: RuleContext) -> None:
    """A batch larger than the training split only repeats rows (train uses the split's size)."""
    from polytask.spec.splits import split_sizes

    if ctx.spec.is_meta or not ctx.spec.tasks:
        return
    train_rows = 0
    for task in ctx.spec.tasks.values():
        dataset = ctx.spec.datasets.get(task.dataset)
        facts = ctx.facts.get(task.dataset)
        if dataset is None or facts is None or facts.rows is None:
            return  # not known without reading the data
        split = dataset.split
        train_rows += split_sizes(int(facts.rows), [split.train, split.validation, split.test])[0]
    batch = ctx.spec.training.batch_size
    # Only a batch size the spec sets: the default above a toy table is clamped with a notice.
    if batch > train_rows and "batch_size" in ctx.spec.training.model_fields_set:
        ctx.report("PT226", f"training.batch_size ({batch}) is larger than the training split ({train_rows} "
                   f"examples over all tasks); train uses batches of {train_rows}", ("training", "batch_size"),
                   hint=f"set training.batch_size to at most {train_rows}")


# --------------------------------------------------------------------------- user code


@rule()
def python_callables(ctx: RuleContext) -> None:
    from polytask.spec.code import import_callable
    from polytask.errors import PolytaskError

    for name, dataset in ctx.spec.datasets.items():
        if dataset.source != "python":
            continue
        path = ("datasets", name, "callable")
        if not ctx.allow_code:
            ctx.report("PT401", f"dataset '{name}' runs Python code ({dataset.callable}); it was not imported "
                       "or checked", path, hint="run `polytask check --allow-code` if you trust this spec")
            continue
        try:
            import_callable(dataset.callable, ctx.base_dir, allow_code=True)
        except PolytaskError as exc:
            ctx.report("PT402", f"dataset '{name}': {exc.message}", path, hint=exc.hint)


def run_rules(ctx: RuleContext) -> list[Diagnostic]:
    """Run every rule; a bug in one rule becomes a PT900 diagnostic, not a traceback."""
    for func, needs in RULES:
        if any(section in ctx.invalid for section in needs):
            continue
        try:
            func(ctx)
        except Exception as exc:  # pragma: no cover - reported so it gets fixed
            ctx.report("PT900", f"rule {func.__name__} failed: {type(exc).__name__}: {exc}", (),
                       hint="this is a bug in polytask; please report it with the spec")
    if ctx.suppressed:
        last = ctx.diagnostics[-1]
        ctx.diagnostics.append(Diagnostic("PT099", f"{ctx.suppressed:,} more problems not listed; fix these first",
                                          file=ctx.filename, line=last.line, column=last.column))
    return ctx.diagnostics
