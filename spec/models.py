"""The typed spec language (v1): pydantic models for a validated polytask spec.

A spec declares tasks T_i = (D_i, L_i) over named datasets, or a task family p(T) for
meta-learning, plus an optional shared structure (pooled, hard, meta) and training
settings. Variants are discriminated unions (`source:` for data, `sharing:` for
structure); every model forbids unknown keys. This module never imports TensorFlow.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

from polytask.spec.layers import LayerList

SPEC_VERSION = 1

Identifier = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]
MAX_INT = 2**31 - 1  # counts and sizes must fit TensorFlow's int32
PositiveInt = Annotated[int, Field(ge=1, le=MAX_INT)]
NonNegativeFloat = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
PositiveFloat = Annotated[float, Field(gt=0.0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class StrictModel(BaseModel):
    """Base for every spec node: unknown keys are errors, values are not coerced silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _exactly_one(model: BaseModel, what: str) -> BaseModel:
    chosen = [name for name in type(model).model_fields if getattr(model, name) is not None]
    if len(chosen) != 1:
        names = ", ".join(type(model).model_fields)
        raise ValueError(f"{what} takes exactly one of: {names} (got {len(chosen) or 'none'})")
    return model


class OneOf(StrictModel):
    """A single-key mapping such as `{adam: {learning_rate: 0.001}}`: exactly one field set."""

    @property
    def kind(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def params(self) -> Any:
        return getattr(self, self.kind)


# --------------------------------------------------------------------------- splits


class Split(StrictModel):
    """Fractions of a dataset's rows per split; they must add up to 1."""

    train: Fraction = 0.8
    validation: Fraction = 0.0
    test: Fraction = 0.2

    @model_validator(mode="after")
    def _adds_up(self) -> "Split":
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(
                f"split fractions add up to {total:g}, not 1 "
                f"(train {self.train:g} + validation {self.validation:g} + test {self.test:g})"
            )
        if self.train <= 0.0:
            raise ValueError("the train split must be larger than 0")
        return self


# --------------------------------------------------------------------------- datasets


class _Dataset(StrictModel):
    split: Split = Split()


class CsvDataset(_Dataset):
    """A table in a csv file: feature columns in, one or more target columns out."""

    source: Literal["csv"]
    path: str
    features: Optional[list[str]] = Field(
        None, description="Input columns; default: every column that no task uses as a target."
    )
    delimiter: str = Field(",", min_length=1, max_length=1)


class NpzDataset(_Dataset):
    """Arrays in a NumPy .npz file: `features` names the input array, targets name others."""

    source: Literal["npz"]
    path: str
    features: str = "x"


class ImageFolderDataset(_Dataset):
    """Class-structured images: `<root>/<class>/<image>` (or deeper, see `class_depth`), a folder or a .zip."""

    source: Literal["image_folder"]
    path: str
    image_size: tuple[PositiveInt, PositiveInt] = (28, 28)
    grayscale: bool = True
    invert: bool = False
    class_depth: PositiveInt = Field(
        1, description="Folder levels that make up a class name, e.g. 2 for Omniglot's <alphabet>/<character>."
    )
    extensions: list[str] = [".png", ".jpg", ".jpeg", ".bmp", ".gif"]


class TfRecordFeature(StrictModel):
    shape: list[Annotated[int, Field(ge=1)]] = []
    dtype: Literal["float32", "int64", "string"] = "float32"


class TfRecordDataset(_Dataset):
    """tf.train.Example records; `schema` declares each feature's shape and dtype."""

    source: Literal["tfrecord"]
    path: str = Field(description="A file or a glob pattern.")
    schema_: dict[Identifier, TfRecordFeature] = Field(alias="schema")
    features: list[str]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


SKLEARN_DATASETS = ("digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud")


class SklearnDataset(_Dataset):
    """A data set that ships inside scikit-learn (no download)."""

    source: Literal["sklearn"]
    name: Literal["digits", "iris", "wine", "breast_cancer", "diabetes", "linnerud"]


class SinusoidGenerator(StrictModel):
    """Rows of y = A sin(x - phi) for a fixed set of (A, phi); one target column per task."""

    kind: Literal["sinusoid"]
    tasks: PositiveInt = 5
    amplitude: tuple[FiniteFloat, FiniteFloat] = (0.1, 5.0)
    phase: tuple[FiniteFloat, FiniteFloat] = (0.0, math.pi)
    x: tuple[FiniteFloat, FiniteFloat] = (-5.0, 5.0)


class GradNormToyGenerator(StrictModel):
    """GradNorm's toy regression (Chen et al. 2018): y_i = sigma_i tanh((B + eps_i) x).

    Targets are `task_0 ... task_{T-1}`; `sigmas` sets each task's scale (default: 1..T).
    """

    kind: Literal["gradnorm_toy"]
    tasks: PositiveInt = 2
    input_dim: PositiveInt = 250
    output_dim: PositiveInt = 100
    sigmas: Optional[list[PositiveFloat]] = None
    noise: NonNegativeFloat = 0.0


class MmoeGenerator(StrictModel):
    """MMoE's synthetic tasks (Ma et al. 2018) whose label correlation is set by `correlation`."""

    kind: Literal["mmoe"]
    tasks: Annotated[int, Field(ge=2)] = 2
    input_dim: PositiveInt = 100
    correlation: Annotated[float, Field(ge=-1.0, le=1.0)] = 0.9
    sine_terms: PositiveInt = 10
    noise: NonNegativeFloat = 0.01


Generator = Annotated[
    Union[SinusoidGenerator, GradNormToyGenerator, MmoeGenerator], Field(discriminator="kind")
]


class SyntheticDataset(_Dataset):
    """Data the project generates from the seed: nothing to download, nothing to ship."""

    source: Literal["synthetic"]
    generator: Generator
    samples: PositiveInt = 1000


class PythonDataset(_Dataset):
    """Arrays returned by a Python callable `module:attr` (code execution: opt-in only).

    The callable takes no arguments and returns a mapping of column name to array.
    """

    source: Literal["python"]
    callable: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    features: Optional[list[str]] = None


Dataset = Annotated[
    Union[
        CsvDataset,
        NpzDataset,
        ImageFolderDataset,
        TfRecordDataset,
        SklearnDataset,
        SyntheticDataset,
        PythonDataset,
    ],
    Field(discriminator="source"),
]


# --------------------------------------------------------------------------- tasks

LossName = Literal["cross_entropy", "binary_cross_entropy", "mse", "mae", "huber"]
MetricName = Literal["accuracy", "top5_accuracy", "auc", "mse", "mae", "rmse", "r2"]


class Task(StrictModel):
    """One task T_i = (D_i, L_i): a dataset, the target it predicts and the loss to learn it."""

    dataset: Identifier
    target: str = Field(min_length=1)
    loss: LossName
    metrics: list[MetricName] = []
    weight: NonNegativeFloat = Field(1.0, description="w_i in L = sum_i w_i L_i.")
    sampling_rate: Optional[PositiveFloat] = Field(
        None, description="Relative share of batches drawn from this task (separate from weight)."
    )
    features: Optional[list[str]] = Field(None, description="Override the dataset's input columns.")


# --------------------------------------------------------------------------- task families


class SinusoidFamily(StrictModel):
    """The MAML sinusoid family: y = A sin(x - phi), A, phi, x uniform in the given ranges."""

    source: Literal["sinusoid"]
    amplitude: tuple[FiniteFloat, FiniteFloat] = (0.1, 5.0)
    phase: tuple[FiniteFloat, FiniteFloat] = (0.0, math.pi)
    x: tuple[FiniteFloat, FiniteFloat] = (-5.0, 5.0)
    shots: PositiveInt = 10
    queries: PositiveInt = 10


class ClassSplit(StrictModel):
    """Fractions of *classes* for meta-train / meta-validation / meta-test (seeded)."""

    train: Fraction = 0.7
    validation: Fraction = 0.1
    test: Fraction = 0.2

    @model_validator(mode="after")
    def _adds_up(self) -> "ClassSplit":
        total = self.train + self.validation + self.test
        if not math.isclose(total, 1.0, abs_tol=1e-6):
            raise ValueError(f"class_split fractions add up to {total:g}, not 1")
        return self


class ClassEpisodeFamily(StrictModel):
    """N-way K-shot Q-query classification episodes drawn from a class-structured dataset."""

    source: Literal["classes"]
    dataset: Identifier
    ways: Annotated[int, Field(ge=2)] = 5
    shots: PositiveInt = 1
    queries: PositiveInt = 15
    rotations: list[Literal[0, 90, 180, 270]] = Field(
        [0], description="Each rotation of a class is an extra class (Omniglot: [0, 90, 180, 270])."
    )
    class_split: ClassSplit = ClassSplit()
    extra_datasets: list[Identifier] = Field(
        [],
        description="More image_folder datasets whose classes join `dataset`'s pool before the class "
        "split (e.g. Omniglot's two small background zips). Each must have the same image_size "
        "and grayscale setting as `dataset`.",
    )


Family = Annotated[Union[SinusoidFamily, ClassEpisodeFamily], Field(discriminator="source")]


# --------------------------------------------------------------------------- structure


class PooledStructure(StrictModel):
    """One model over D = U D_i with L = sum_i w_i L_i, optionally conditioned on z_i."""

    sharing: Literal["pooled"]
    model: LayerList = []
    descriptor: Literal["none", "onehot", "embedding"] = "none"
    embedding_dim: PositiveInt = 8


class HardStructure(StrictModel):
    """A shared trunk with one head per task (hard parameter sharing)."""

    sharing: Literal["hard"]
    trunk: LayerList
    head: LayerList = []


class InnerLoop(StrictModel):
    steps: PositiveInt = 1
    learning_rate: PositiveFloat = 0.01
    eval_steps: Optional[PositiveInt] = Field(
        None, description="Inner steps at evaluation (default: steps)."
    )


class MetaStructure(StrictModel):
    """Meta-learning over a task family with a named algorithm."""

    sharing: Literal["meta"]
    algorithm: Literal["maml", "fomaml", "reptile", "anil", "metasgd", "protonet"]
    inner: InnerLoop = InnerLoop()
    model: LayerList
    reptile_step_size: PositiveFloat = Field(
        1.0, description="Reptile's outer interpolation rate epsilon (reptile only)."
    )
    transductive_batch_norm: bool = Field(
        False,
        description="Batch norm on query examples: false (default) normalises them with their task's "
        "support-set statistics, so each query prediction is independent of the other queries; true "
        "uses the query batch's own statistics, as in the MAML reference code (transductive).",
    )


Structure = Annotated[
    Union[PooledStructure, HardStructure, MetaStructure], Field(discriminator="sharing")
]


# --------------------------------------------------------------------------- training


class AdamParams(StrictModel):
    learning_rate: PositiveFloat = 1e-3
    beta_1: Fraction = 0.9
    beta_2: Fraction = 0.999
    weight_decay: Optional[NonNegativeFloat] = None


class SgdParams(StrictModel):
    learning_rate: PositiveFloat = 1e-2
    momentum: Fraction = 0.0
    nesterov: bool = False


class RmspropParams(StrictModel):
    learning_rate: PositiveFloat = 1e-3
    rho: Fraction = 0.9


class Optimizer(OneOf):
    adam: Optional[AdamParams] = None
    adamw: Optional[AdamParams] = None
    sgd: Optional[SgdParams] = None
    rmsprop: Optional[RmspropParams] = None

    @model_validator(mode="after")
    def _one(self) -> "Optimizer":
        return _exactly_one(self, "optimizer")


class Schedule(StrictModel):
    """Learning-rate schedule applied on top of the optimizer's learning_rate."""

    kind: Literal["constant", "cosine", "exponential"] = "constant"
    warmup_steps: Annotated[int, Field(ge=0, le=MAX_INT)] = 0
    decay_rate: Fraction = 0.96
    decay_steps: PositiveInt = 1000
    min_fraction: Fraction = 0.0


class TemperatureSampling(StrictModel):
    temperature: PositiveFloat


SamplingName = Literal["uniform", "proportional"]
Sampling = Union[SamplingName, TemperatureSampling]


class GradNormParams(StrictModel):
    alpha: NonNegativeFloat = 1.5
    learning_rate: PositiveFloat = 0.025


class DwaParams(StrictModel):
    temperature: PositiveFloat = 2.0


class StaticParams(StrictModel):
    weights: Optional[dict[Identifier, NonNegativeFloat]] = Field(
        None, description="Per-task weights; default: each task's `weight`."
    )


class Weighting(OneOf):
    """One loss-weighting / gradient transform. Several compose in order (a list)."""

    equal: Optional[dict] = None
    static: Optional[StaticParams] = None
    uncertainty: Optional[dict] = None
    gradnorm: Optional[GradNormParams] = None
    pcgrad: Optional[dict] = None
    dwa: Optional[DwaParams] = None

    @model_validator(mode="before")
    @classmethod
    def _from_name(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {value: {}}
        if isinstance(value, dict):
            return {k: ({} if v is None else v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _one(self) -> "Weighting":
        return _exactly_one(self, "a weighting")


class EarlyStopping(StrictModel):
    metric: str = "loss"
    patience: PositiveInt = 5
    mode: Literal["min", "max"] = "min"
    min_delta: NonNegativeFloat = 0.0


class Training(StrictModel):
    steps: PositiveInt = 1000
    batch_size: PositiveInt = 64
    meta_batch: PositiveInt = Field(4, description="Tasks per meta-update (meta only).")
    optimizer: Optimizer = Optimizer(adam=AdamParams())
    schedule: Schedule = Schedule()
    sampling: Sampling = "proportional"
    weighting: list[Weighting] = Field(default_factory=lambda: [Weighting(equal={})])
    eval_every: PositiveInt = 200
    eval_episodes: PositiveInt = Field(600, description="Meta-test episodes for the final report.")
    checkpoint_every: PositiveInt = 500
    log_every: PositiveInt = 50
    early_stopping: Optional[EarlyStopping] = None
    gradient_clip_norm: Optional[PositiveFloat] = None

    @model_validator(mode="before")
    @classmethod
    def _weighting_list(cls, value: Any) -> Any:
        if isinstance(value, dict) and "weighting" in value and not isinstance(value["weighting"], list):
            value = dict(value)
            value["weighting"] = [value["weighting"]]
        return value


class Runtime(StrictModel):
    """Defaults for where and how the program runs (CLI flags override)."""

    strategy: Literal["auto", "one_device", "mirrored", "multi_worker", "tpu"] = "auto"
    precision: Literal["float32", "mixed_float16", "mixed_bfloat16"] = "float32"
    jit_compile: Optional[bool] = Field(None, description="XLA for train steps; default: where it helps.")


# --------------------------------------------------------------------------- the spec


class Spec(StrictModel):
    """A whole polytask spec: tasks over datasets, or a task family, plus shared structure."""

    polytask: Literal[1] = Field(description="Spec format version.")
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=128)
    description: Optional[str] = None
    seed: Annotated[int, Field(ge=0, le=2**31 - 1)] = 0
    datasets: dict[Identifier, Dataset] = {}
    tasks: dict[Identifier, Task] = {}
    family: Optional[Family] = None
    loss: Optional[LossName] = Field(None, description="The family's loss (meta only).")
    metrics: list[MetricName] = []
    structure: Structure = Field(
        default_factory=lambda: PooledStructure(sharing="pooled"),
        description="How parameters are shared; default pooled.",
    )
    training: Training = Training()
    runtime: Runtime = Runtime()

    @property
    def sharing(self) -> str:
        return self.structure.sharing

    @property
    def is_meta(self) -> bool:
        return self.structure.sharing == "meta"
