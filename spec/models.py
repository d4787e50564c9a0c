"""The typed spec language (v1): pydantic models for a validated polytask spec.

A spec declares tasks T_i = (D_i, L_i) over named datasets, or a task family p(T) for
meta-learning, plus an optional shared structure (a registered sharing pattern) and training
settings. Variants are discriminated unions (`source:` for data, `sharing:` for
structure); every model forbids unknown keys. This module never imports TensorFlow.
"""
from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, Optional, Union

from pydantic import Field, model_validator

from polytask.spec.registry import (FAMILIES, GENERATORS, LOSSES, METRICS, OPTIMIZERS, SCHEDULES, SHARING, SOURCES,
                                    WEIGHTINGS)
from polytask.spec.splits import Split  # noqa: F401  (re-exported: models.Split)
from polytask.spec.types import MAX_INT, Identifier, NonNegativeFloat, PositiveFloat, PositiveInt, StrictModel

SPEC_VERSION = 1


class OneOf(StrictModel):
    """A single-key mapping such as `{adam: {learning_rate: 0.001}}`: exactly one field set.

    A bare name (`optimizer: adam`) and a null value (`{adam: }`) mean the defaults.
    Subclasses set `noun` (for "unknown optimizer 'x'") and `what` (for "X takes exactly one of").
    """

    noun: ClassVar[str] = ""
    what: ClassVar[str] = ""

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> "OneOf":
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            names = ", ".join(type(self).model_fields)
            raise ValueError(f"{self.what} takes exactly one of: {names} (got {len(chosen) or 'none'})")
        return self

    @property
    def kind(self) -> str:
        # Validation leaves exactly one field set (the `_exactly_one` check), so this is it.
        return next(iter(self.model_fields_set))

    @property
    def params(self) -> Any:
        return getattr(self, self.kind)


# --------------------------------------------------------------------------- splits
# `Split` lives in polytask.spec.splits (imported above): every data source's params model
# derives from a base that has it, and those are built while the registries load.


# --------------------------------------------------------------------------- datasets
# One params model per data source, owned by its descriptor module in
# polytask.compiler.data.sources (generator kinds: polytask.compiler.data.generators).

Dataset = SOURCES.tagged_union()
"""A data source, by its `source:` tag (csv, npz, ...)."""
Generator = GENERATORS.tagged_union()
"""A synthetic generator, by its `kind:` tag."""


# --------------------------------------------------------------------------- tasks

class LossBase(OneOf):
    """A loss with parameters, as a single-key mapping: `{focal: {gamma: 3}}`."""

    noun: ClassVar[str] = "loss"
    what: ClassVar[str] = "a loss"


LossName = LOSSES.literal()
LossChoice = Union[LossName, LOSSES.single_key_model("Loss", LossBase)]
"""A loss by name (`mse`), or by name with parameters (`{focal: {gamma: 3}}`)."""
MetricName = METRICS.literal()


def loss_name(choice) -> Optional[str]:
    """The loss's name, whichever way it was written (None when no loss is set)."""
    return choice if choice is None or isinstance(choice, str) else choice.kind


def loss_params(choice):
    """The loss's params model, with defaults when it was written by name alone."""
    if choice is None:
        return None
    return LOSSES.get(choice).default_params() if isinstance(choice, str) else choice.params


class Task(StrictModel):
    """One task T_i = (D_i, L_i): a dataset, the target it predicts and the loss to learn it."""

    dataset: Identifier = Field(description='Name of a dataset under `datasets`.')
    target: str = Field(min_length=1, description='The column (or array) to predict; image folders: `label`.')
    loss: LossChoice = Field(description='Also fixes the output layer (softmax over the classes, one sigmoid unit, or linear units: the loss decides from the target).')
    metrics: list[MetricName] = Field([], description='Reported per task on validation and test.')
    weight: NonNegativeFloat = Field(1.0, description="w_i in L = sum_i w_i L_i.")
    sampling_rate: Optional[PositiveFloat] = Field(
        None, description="Relative share of batches drawn from this task (separate from weight)."
    )
    features: Optional[list[str]] = Field(None, min_length=1, description="Override the dataset's input columns.")

    @property
    def loss_name(self) -> str:
        return loss_name(self.loss)

    @property
    def loss_params(self):
        return loss_params(self.loss)


# --------------------------------------------------------------------------- task families


Family = FAMILIES.tagged_union()


# --------------------------------------------------------------------------- structure


Structure = SHARING.tagged_union()


# --------------------------------------------------------------------------- training


class OptimizerBase(OneOf):
    """One of the optimizers with its parameters; a bare name means its defaults."""

    noun: ClassVar[str] = "optimizer"
    what: ClassVar[str] = "optimizer"


Optimizer = OPTIMIZERS.single_key_model("Optimizer", OptimizerBase)
Schedule = SCHEDULES.tagged_union(default="constant")
"""Learning-rate schedule applied on top of the optimizer's learning_rate (`kind:`, default constant)."""


class TemperatureSampling(StrictModel):
    temperature: PositiveFloat = Field(description='Draw task i with probability proportional to n_i^(1/T): T=1 proportional, large T uniform.')


SamplingName = Literal["uniform", "proportional"]
Sampling = Union[SamplingName, TemperatureSampling]


class WeightingBase(OneOf):
    """One loss-weighting / gradient transform. Several compose in order (a list)."""

    noun: ClassVar[str] = "weighting"
    what: ClassVar[str] = "a weighting"


Weighting = WEIGHTINGS.single_key_model("Weighting", WeightingBase)


class EarlyStopping(StrictModel):
    metric: str = Field("loss", description='`loss`, `<task>/loss` or `<task>/<metric>` (meta: `loss` or a family metric).')
    patience: PositiveInt = Field(5, description='Evaluations without improvement before stopping.')
    mode: Literal["min", "max"] = Field("min", description='`min` for losses and errors, `max` for metrics that are better when higher (accuracy, r2, ...).')
    min_delta: NonNegativeFloat = Field(0.0, description='Smallest change that counts as an improvement.')


class Training(StrictModel):
    steps: PositiveInt = Field(1000, description='Optimizer updates (meta: meta-updates).')
    batch_size: PositiveInt = Field(64, description='Examples per batch (global, across replicas).')
    meta_batch: PositiveInt = Field(4, description="Tasks per meta-update (meta only).")
    optimizer: Optimizer = Field(default_factory=lambda: Optimizer(adam={}), description='An optimizer by name (defaults), or `{NAME: {parameters}}`.')
    schedule: Schedule = Field(default_factory=lambda: SCHEDULES.get("constant").Params(), description='Learning-rate schedule.')
    sampling: Sampling = Field("proportional", description='How batches are drawn across tasks: uniform, proportional to task size, or {temperature: T}.')
    weighting: list[Weighting] = Field(default_factory=lambda: [Weighting(equal={})], description='Loss weighting / gradient transforms, applied in order.')
    eval_every: PositiveInt = Field(200, description='Evaluate on the validation split every N steps.')
    eval_episodes: PositiveInt = Field(600, description="Meta-test episodes for the final report.")
    checkpoint_every: PositiveInt = Field(500, description='Save a checkpoint every N steps.')
    log_every: PositiveInt = Field(50, description='Log metrics every N steps.')
    early_stopping: Optional[EarlyStopping] = Field(None, description='Stop when a validation metric stops improving.')
    gradient_clip_norm: Optional[PositiveFloat] = Field(None, description='Clip the global gradient norm.')

    @model_validator(mode="before")
    @classmethod
    def _weighting_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("weighting") is not None and not isinstance(value["weighting"], list):
            value = dict(value)
            value["weighting"] = [value["weighting"]]
        return value


class Runtime(StrictModel):
    """Defaults for where and how the program runs (CLI flags override)."""

    strategy: Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"] = Field("auto", description='tf.distribute strategy; auto mirrors over local GPUs, else one CPU device.')
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = Field("float32", description='float32 or mixed precision.')
    jit_compile: Optional[bool] = Field(None, description="XLA for train steps; default: where it helps.")


# --------------------------------------------------------------------------- the spec


class Spec(StrictModel):
    """A whole polytask spec: tasks over datasets, or a task family, plus shared structure."""

    polytask: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128, description='Run name: letters, digits, `_ . -`; used for run folders and reports.')
    description: Optional[str] = Field(None, description='Free text for people.')
    seed: Annotated[int, Field(strict=True, ge=0, le=MAX_INT)] = Field(0, description='Seeds every random choice (splits, initialisation, sampling, generated data).')
    datasets: dict[Identifier, Dataset] = Field({}, description='Named data sources; tasks and families refer to them by name.')
    tasks: dict[Identifier, Task] = Field({}, description='Named tasks T_i = (dataset, target, loss) for multi-task learning (the multi-task sharing patterns).')
    family: Optional[Family] = Field(None, description='A task family p(T) for meta-learning (meta sharing).')
    loss: Optional[LossChoice] = Field(None, description="The family's loss (meta only).")
    metrics: list[MetricName] = Field([], description="The family's metrics (meta only).")
    structure: Structure = Field(
        default_factory=lambda: SHARING.get("pooled").Params(sharing="pooled"),
        description="How parameters are shared; default pooled.",
    )
    training: Training = Field(Training(), description='Steps, batches, optimizer, schedule, sampling, loss weighting, cadence.')
    runtime: Runtime = Field(Runtime(), description='Defaults for distribution and precision (CLI flags override).')

    @property
    def sharing(self) -> str:
        return self.structure.sharing

    @property
    def is_meta(self) -> bool:
        """True when the sharing pattern learns from a task family (meta-learning)."""
        return SHARING.get(self.structure.sharing).learns_from == "family"

    @property
    def loss_name(self) -> Optional[str]:
        """The family's loss name (meta only)."""
        return loss_name(self.loss)

    @property
    def loss_params(self):
        return loss_params(self.loss)
