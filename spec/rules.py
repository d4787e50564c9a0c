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
                   hint="add `tasks:` (multi-task, sharing pooled or hard) or `family:` (meta-learning, sharing meta)")
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
        _metrics_fit(ctx, f"task '{name}'", task.loss_name, task.loss_params, task.metrics, base + ("metrics",),
                     column)
    if ctx.invalid & {"structure", "family", "loss", "metrics"}:
        return
    if ctx.spec.family is not None and ctx.spec.loss is not None and ctx.spec.is_meta:
        _metrics_fit(ctx, "the family", ctx.spec.loss_name, ctx.spec.loss_params, ctx.spec.metrics, ("metrics",),
                     None)


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
        if transform.multi_task and 0 < _task_count(ctx) < 2:
            ctx.report("PT215", f"weighting {item.kind} balances several tasks; with one task it does nothing",
                       path, prefer="key" if list_form else "value")
    for kind in sorted(k for k, n in Counter(kinds).items() if n > 1):
        ctx.report("PT107", f"weighting {kind} is listed more than once", ("training", "weighting"), prefer="key")
    for identity in dict.fromkeys(k for k in kinds if not WEIGHTINGS.get(k).reweights):
        if len(kinds) > 1:
            ctx.report("PT107", f"weighting `{identity}` means no reweighting; it cannot be combined with "
                       f"{one_of([k for k in kinds if k != identity])}", ("training", "weighting"), prefer="key",
                       hint=f"remove `{identity}`")


@rule("training", "structure")
def training_settings(ctx: RuleContext) -> None:
    training = ctx.spec.training
    explicit = training.model_fields_set
    meta = ctx.spec.is_meta
    if training.schedule.warmup_steps >= training.steps and training.schedule.warmup_steps > 0:
        ctx.report("PT218", f"warmup_steps ({training.schedule.warmup_steps}) is not below training.steps "
                   f"({training.steps}): the learning rate never leaves warm-up",
                   ("training", "schedule", "warmup_steps"), hint="shorten the warm-up")
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
    watched = stopping.metric.rsplit("/", 1)[-1]
    higher_better = watched in METRICS and METRICS.get(watched).higher_is_better
    if higher_better and stopping.mode == "min":
        ctx.report("PT215", f"'{stopping.metric}' is better when higher, but early stopping mode is min",
                   ("training", "early_stopping", "mode") if ("training", "early_stopping", "mode") in ctx.source_map
                   else ("training", "early_stopping"), hint="set `mode: max`")


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
        ctx.report("PT230", f"training.batch_size ({batch}) is larger than the training split ({train_rows} "
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
