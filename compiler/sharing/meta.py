"""`meta`: learn from a distribution of tasks (a `family`) so a new task is learned from a few examples.

The model is adapted to each task by an inner loop (or, for metric-based algorithms,
classifies by distance to class prototypes); the outer loop learns what adapts well.
Algorithms, the episode families and the functional model live in `polytask.compiler.meta`.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Optional

from pydantic import Field

from polytask.compiler.layers import output_layer
from polytask.compiler.meta.algorithms.base import MAML_PLUS_PLUS
from polytask.compiler.sharing import SharingPattern, check_layers
from polytask.spec.registry import ALGORITHMS, FAMILIES, SHARING
from polytask.spec.suggest import one_of
from polytask.spec.types import PositiveFloat, PositiveInt, StrictModel

if TYPE_CHECKING:  # LayerList and AlgorithmName are resolved when the spec models are built (registry._complete)
    from polytask.spec.layers import LayerList
    from polytask.spec.registry import AlgorithmName


class InnerLoop(StrictModel):
    steps: PositiveInt = Field(1, description='Adaptation steps per task in training.')
    learning_rate: PositiveFloat = Field(0.01, description='Inner-loop step size (metasgd: its initial value).')
    eval_steps: Optional[PositiveInt] = Field(
        None, description="Inner steps at evaluation (default: steps)."
    )
    # MAML++ (Antoniou, Edwards & Storkey, ICLR 2019); every default keeps plain MAML.
    multi_step_loss_iterations: Optional[PositiveInt] = Field(
        None, description="MAML++ multi-step loss (MSL): the meta-loss weighs the query loss after every "
        "inner step, annealed over this many meta-iterations towards the last step only (the paper's "
        "importance vector); afterwards only the last step counts. Default: last step only.")
    learn_step_sizes: bool = Field(
        False, description="MAML++ LSLR: learn one inner learning rate per parameter tensor and per inner "
        "step (initialised to `learning_rate`), trained by the outer loop.")
    first_order_iterations: int = Field(
        0, ge=0, strict=True, description="MAML++ derivative-order annealing: the first this many "
        "meta-iterations use the first-order meta-gradient, the rest the algorithm's own (second order).")
    per_step_batch_norm: bool = Field(
        False, description="MAML++ per-step batch-norm weights (BNWB): every batch_norm layer gets its own "
        "gamma and beta for each inner step (the query after step s uses step s's), meta-learned and not "
        "adapted in the inner loop; evaluation steps beyond `steps` reuse the last set.")


class MetaStructure(StrictModel):
    """Meta-learning over a task family with a named algorithm."""

    sharing: Literal["meta"] = Field(description='`meta`')
    algorithm: AlgorithmName = Field(description='Meta-learning algorithm.')
    inner: InnerLoop = Field(InnerLoop(), description='The inner (adaptation) loop.')
    model: LayerList = Field(description='Hidden layers; the output layer is inferred from `loss` (and `ways`).')
    reptile_step_size: PositiveFloat = Field(
        1.0, description="Reptile's outer interpolation rate epsilon (reptile only)."
    )
    transductive_batch_norm: bool = Field(
        False,
        description="Batch norm on query examples: false (default) normalises them with their task's "
        "support-set statistics, so each query prediction is independent of the other queries; true "
        "uses the query batch's own statistics, as in the MAML reference code (transductive).",
    )


@SHARING.register
class Meta(SharingPattern):
    """Meta-learning: adapt to each task of a family from a few examples."""

    name = "meta"
    Params = MetaStructure
    starter = """
# A task family p(T) for meta-learning: here the MAML sinusoids y = A sin(x - phi), a new
# (A, phi) per task. For few-shot image classification use instead
#   datasets: {omniglot: {source: image_folder, path: omniglot.zip, class_depth: 2, invert: true}}
#   family: {source: classes, dataset: omniglot, ways: 5, shots: 1, queries: 15,
#            rotations: [0, 90, 180, 270]}
#   loss: cross_entropy
family:
  source: sinusoid
  amplitude: [0.1, 5.0]
  phase: [0.0, 3.14159]
  x: [-5.0, 5.0]
  shots: 10                   # support examples per task (K)
  queries: 10                 # query examples per task
loss: mse
metrics: [mse]

# meta: an algorithm (<<algorithm>>) adapting a model
# with an inner loop; the output layer is inferred from the loss.
structure:
  sharing: meta
  algorithm: maml
  inner: {steps: 1, learning_rate: 0.01, eval_steps: 10}
  model:
    - dense: {units: 40, activation: relu}
    - dense: {units: 40, activation: relu}

training:
  steps: 10000
  meta_batch: 25              # tasks per meta-update
  optimizer: {adam: {learning_rate: 1.0e-3}}
  eval_every: 500
  eval_episodes: 600
  checkpoint_every: 1000
"""  # `polytask init --pattern meta`
    learns_from = "family"

    def plan_spec(self, loaded, *, allow_code=False, column_info=None):
        from polytask.compiler.plan import PlanView, meta_program_plan

        self.check(loaded.spec.structure, PlanView(loaded, {}))
        return meta_program_plan(loaded)

    def check(self, structure, view):
        algorithm = ALGORITHMS.get(structure.algorithm)
        name, family, explicit = algorithm.name, view.spec.family, structure.model_fields_set
        if algorithm.metric_based:
            if family is not None and FAMILIES.get(family.source).measures != "classification":
                gradient_based = ALGORITHMS.where(lambda a: not a.metric_based)
                view.report("PT212", f"{name} classifies by distance to class prototypes; it needs a classes "
                            f"family, not {family.source}", ("structure", "algorithm"),
                            hint=f"use {one_of(gradient_based)} for regression families")
            if "inner" in explicit:
                view.report("PT215", f"{name} has no inner loop; `inner` is ignored", ("structure", "inner"),
                            prefer="key")
        if "reptile_step_size" in explicit and not algorithm.outer_step_size:
            view.report("PT215", f"reptile_step_size is for reptile; it has no effect with {name}",
                        ("structure", "reptile_step_size"), prefer="key")
        if family is not None:
            shape = FAMILIES.get(family.source).input_shape(family, view.spec)
            layers = list(structure.model)
            if not algorithm.metric_based:  # the inferred output layer (its width does not change the fit)
                layers.append(output_layer(1))
            check_layers(view, layers, shape, ("structure", "model"), "functional", len(structure.model))
        inner = structure.inner
        self._check_maml_plus_plus(algorithm, inner, view)
        if inner.eval_steps is not None and inner.eval_steps < inner.steps:
            view.report("PT215", f"inner.eval_steps ({inner.eval_steps}) is below inner.steps ({inner.steps}): "
                        "evaluation adapts less than training did", ("structure", "inner", "eval_steps"),
                        severity="warning")

    @staticmethod
    def _check_maml_plus_plus(algorithm, inner, view) -> None:
        """MAML++ options that cannot work with this algorithm or these inner-loop settings."""
        set_fields = inner.model_fields_set
        where = ("structure", "inner")
        if not algorithm.metric_based:
            for field in MAML_PLUS_PLUS:
                if field in set_fields and not algorithm.implementation.supports(field):
                    view.report("PT215", f"inner.{field} has no effect with {algorithm.name}", where + (field,),
                                prefer="key", severity="warning")
        if "multi_step_loss_iterations" in set_fields and inner.steps == 1:
            view.report("PT215", "inner.multi_step_loss_iterations weighs the loss after each inner step; with "
                        "inner.steps 1 there is only one", where + ("multi_step_loss_iterations",),
                        prefer="key", severity="warning", hint="use inner.steps of 2 or more (MAML++ uses 5)")
        if (inner.per_step_batch_norm and inner.steps == 1 and not algorithm.metric_based
                and algorithm.implementation.supports("per_step_batch_norm")):
            view.report("PT215", "inner.per_step_batch_norm gives each inner step its own batch-norm weights; "
                        "with inner.steps 1 there is one set, as without it", where + ("per_step_batch_norm",),
                        prefer="key", severity="warning", hint="use inner.steps of 2 or more (MAML++ uses 5)")
        learned = "learned inner learning rates" if algorithm.learned_learning_rates else (
            "per-step learning rates (learn_step_sizes)"
            if inner.learn_step_sizes and not algorithm.metric_based
            and algorithm.implementation.supports("learn_step_sizes") else None)  # else PT215 above: no effect
        if learned and inner.eval_steps is not None and inner.eval_steps > inner.steps:
            # The learned step sizes are only meaningful for the steps they were trained for;
            # more steps at evaluation can diverge without any sign in the training curve.
            view.report("PT212", f"inner.eval_steps ({inner.eval_steps}) is above inner.steps ({inner.steps}), "
                        f"but the {learned} were learned for {inner.steps} step(s): adapting longer can "
                        "diverge", where + ("eval_steps",),
                        hint=f"set eval_steps to at most {inner.steps}, or train with that many steps")
