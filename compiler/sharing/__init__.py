"""Sharing patterns (`structure.sharing`): one module per pattern, each planning itself.

A pattern descriptor declares, in one file:
- `name` and `Params` (the `structure:` mapping, tagged `sharing: <name>`);
- `learns_from`: `tasks` (multi-task) or `family` (meta-learning);
- `check(structure, view)`: its cross-field rules (input spaces, output widths, layers that
  do not fit their input or a form), reported through `view.report(code, message, path, ...)`;
- `plan(structure, tasks, input_shape)`: its parameter groups and which tasks use each,
  in pure Python (no TensorFlow);
- `build(...)`: its TensorFlow network, imported lazily;
- `starter`: the commented starter spec `polytask init --pattern <name>` writes.

`check` is written once and runs in two modes: `polytask check` passes a view over the
spec's data facts (unknown facts: the rule stays silent) that collects positioned
diagnostics; `polytask plan`/`train` pass a view over the resolved plan that raises the
first error. So a rule, its message and its shape arithmetic exist once, and a new pattern
that has no `plan` cannot silently fall back to another pattern's.
"""
from __future__ import annotations

from typing import ClassVar, Optional

from polytask.compiler.layers import LayerStackError, infer_layers, require_form, static_prefix
from polytask.spec.registry import LAYERS, SHARING, Concept

__all__ = ["SHARING", "SharingPattern", "check_layers", "one_input_shape"]


class SharingPattern(Concept):
    """Base of every sharing-pattern descriptor."""

    learns_from: ClassVar[str] = "tasks"  # or "family"
    # One shared representation h (the net has represent(x) and decode(h, task)): weightings
    # that work on representation gradients (`rep_grad`, MGDA-UB, GradDrop) need it.
    shared_representation: ClassVar[bool] = False
    # The commented spec body `polytask init --pattern <name>` writes; `<<kind>>` becomes the
    # names registered for that kind (`<<source>>`: csv, image_folder, ...).
    starter: ClassVar[Optional[str]] = None

    def check(self, structure, view) -> None:
        """Report this pattern's problems through `view` (see the module docstring)."""

    def plan_spec(self, loaded, *, allow_code: bool = False, column_info=None):
        """The whole `polytask plan` of a spec with this pattern (a `polytask.compiler.plan.Plan`).

        Multi-task patterns resolve the tasks, run `check` on them (`PlanView`) and `plan`;
        a pattern that learns otherwise (meta) overrides this.
        """
        from polytask.compiler.plan import plan_tasks

        return plan_tasks(self, loaded, allow_code=allow_code, column_info=column_info)

    def plan(self, structure, tasks: dict, input_shape: tuple):
        """(parameter groups, notes) for resolved `tasks` (name -> TaskPlan) over `input_shape`."""
        raise NotImplementedError(f"sharing pattern {self.name} does not plan multi-task models")

    def build(self, structure, groups, num_tasks: int, mean, std):
        """The Keras network: `net(x, task_ids)` -> one output tensor per head group."""
        raise NotImplementedError(f"sharing pattern {self.name} has no multi-task network")


def check_layers(view, layers, input_shape: Optional[tuple], path: tuple, form: str = "keras",
                 inferred_from: Optional[int] = None) -> Optional[tuple]:
    """PT221 when a layer list does not fit `input_shape`; returns the output shape (None: unknown).

    Layers from `inferred_from` on are the ones the compiler adds (the output layer)."""
    where = ".".join(map(str, path))
    for index, layer in enumerate(layers):
        for field, value in layer.descriptor.files(layer.params).items():
            view.check_file(value, path + (index, layer.kind, field), f"{layer.kind} {field} file")
    cut = static_prefix(layers) if getattr(view, "static", False) else len(layers)
    try:
        for index in range(cut, len(layers)):  # shapes unknown here (Keras computes them in `plan`)
            label = f"{where}[{index}]"
            require_form(LAYERS.get(layers[index].kind), layers[index].kind, label, form, index, where)
        if input_shape is None:
            return None
        plans = infer_layers(layers[:cut], input_shape, where, form, inferred_from, with_weights=False)
    except LayerStackError as exc:
        view.report("PT221", exc.message, path + (exc.index,), hint=exc.hint)
        return None
    if cut < len(layers):
        return None
    return plans[-1].output_shape if plans else tuple(input_shape)


def one_input_shape(view, pattern: str) -> Optional[tuple]:
    """The one input shape a pattern that feeds every task's rows through shared layers needs.

    PT208 at each task whose inputs differ from the first task's (then None); None also when
    no task's shape is known."""
    known = {n: s for n in view.task_names if (s := view.input_shape(n)) is not None}
    if len(set(known.values())) > 1:
        first = next(iter(known))
        for n, s in known.items():
            if s != known[first]:
                view.report("PT208", f"{pattern} sharing feeds every task through shared layers, but task '{first}' "
                            f"has inputs of shape {list(known[first])} and task '{n}' {list(s)}", ("tasks", n),
                            prefer="key", hint="give the tasks the same input features (`features:`), or split "
                            "them into separate specs")
        return None
    return next(iter(known.values()), None)


def report_repeated_stages(view, stages: Optional[list], pattern: str) -> None:
    """PT230 at each trunk position `stages` lists a second time (a pattern adds one module per stage)."""
    seen: set = set()
    for i, stage in enumerate(stages or []):
        if stage in seen:
            view.report("PT230", f"{pattern} stage {stage} is listed twice", ("structure", "stages", i),
                        hint="list each stage once: remove the repeat")
        seen.add(stage)
