"""N-way K-shot classification episodes from a class-structured image dataset.

Classes come from one or more class-structured image datasets (`family.dataset` plus
`family.extra_datasets`): `image_folder` trees, e.g. Omniglot's
`<alphabet>/<character>/<drawing>.png` with `class_depth: 2`, or TFDS builders such as
`omniglot` (`source: tfds`, whose `label` feature is the character); any source whose
descriptor knows its `episode_image_shape`. The *base* classes (characters) are split into meta-train /
meta-validation / meta-test by a seeded permutation (`family.class_split`); only then is
each base class expanded into one class per rotation in `family.rotations`, so a rotated
copy of a meta-test character can never appear in meta-training.

An episode picks `ways` classes of its split at random, then `shots + queries` distinct
images of each; labels 0..ways-1 follow the order the classes were picked in, which is
random, so no label is tied to a class across episodes.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal, Optional

from pydantic import Field

from polytask.compiler.meta.families.base import SPLITS, EpisodeSampler, FamilyDescription, TaskFamily, split_seed
from polytask.errors import DataError
from polytask.spec.facts import Column
from polytask.spec.registry import FAMILIES, LOSSES, SOURCES
from polytask.spec.splits import Fractions, split_sizes
from polytask.spec.types import Fraction, Identifier, PositiveInt, StrictModel

if TYPE_CHECKING:
    import numpy as np


class ClassSplit(Fractions):
    """Fractions of *classes* for meta-train / meta-validation / meta-test (seeded)."""

    what: ClassVar[str] = "class_split"
    train_required: ClassVar[bool] = False

    train: Fraction = Field(0.7, description='Fraction of classes for meta-training.')
    validation: Fraction = Field(0.1, description='Fraction of classes for meta-validation.')
    test: Fraction = Field(0.2, description='Fraction of classes for the meta-test report.')


class ClassEpisodeFamily(StrictModel):
    """N-way K-shot Q-query classification episodes drawn from a class-structured dataset."""

    source: Literal["classes"] = Field(description='`classes`')
    dataset: Identifier = Field(description='A class-structured image dataset (image_folder, or tfds with image_size and grayscale) whose classes are the episode classes.')
    ways: Annotated[int, Field(strict=True, ge=2)] = Field(5, description='Classes per episode (N).')
    shots: PositiveInt = Field(1, description='Support examples per class (K).')
    queries: PositiveInt = Field(15, description='Query examples per class.')
    rotations: list[Literal[0, 90, 180, 270]] = Field(
        [0], description="Each rotation of a class is an extra class (Omniglot: [0, 90, 180, 270])."
    )
    class_split: ClassSplit = Field(ClassSplit(), description='How classes are split into meta-train / meta-validation / meta-test.')
    extra_datasets: list[Identifier] = Field(
        [],
        description="More such datasets whose classes join `dataset`'s pool before the class "
        "split (e.g. Omniglot's two small background zips). Each must give images of the same shape "
        "as `dataset`.",
    )




@FAMILIES.register
class ClassFamily(TaskFamily):
    """N-way K-shot classification episodes from the classes of image datasets (image_folder, tfds)."""

    name = "classes"
    Params = ClassEpisodeFamily
    measures = "classification"

    def check(self, family, ctx):
        spec, loss = ctx.spec, ctx.spec.loss_name
        names = [family.dataset, *family.extra_datasets]
        paths = [("family", "dataset"), *[("family", "extra_datasets", i) for i in range(len(family.extra_datasets))]]
        first = None  # (name, image shape) of the first usable dataset
        for name, path in zip(names, paths):
            dataset = spec.datasets.get(name)
            if dataset is None:
                continue
            source = SOURCES.get(dataset.source)
            shape = source.episode_image_shape(dataset)
            if shape is None:
                ctx.report("PT211", f"a classes family draws episodes from class-structured images, but dataset "
                           f"'{name}' ({dataset.source}) is not known to be one", path, hint=source.episode_hint())
                continue
            if first is None:
                first = (name, shape)
            elif shape != first[1]:
                ctx.report("PT219", f"dataset '{name}' gives images of shape {list(shape)}, but '{first[0]}' "
                           f"gives {list(first[1])}", path,
                           hint="datasets pooled by one family must produce images of the same shape "
                           "(image_size and grayscale)")
        if len(set(names)) != len(names):
            ctx.report("PT107", "the family lists the same dataset more than once", ("family", "extra_datasets"),
                       prefer="key")
        episode_labels = Column((), categorical=True, num_classes=family.ways, dtype="int64")
        if loss is not None and LOSSES.get(loss).output_kind(spec.loss_params, episode_labels) != "softmax":
            ctx.report("PT205", f"a classes family is N-way classification; loss {loss} does not fit", ("loss",),
                       hint="use a loss with one output per class, such as cross_entropy")
        if len(set(family.rotations)) != len(family.rotations):
            ctx.report("PT107", "rotations are listed more than once", ("family", "rotations"),
                       hint="list each of 0, 90, 180, 270 at most once")
        episodes_fit_data(ctx, family, names)
        height, width = first[1][:2] if first else (1, 1)
        if any(r != 0 for r in family.rotations) and height != width:
            ctx.report("PT107", f"rotations need square images, but dataset '{first[0]}' gives images of "
                       f"{height} x {width}", ("family", "rotations"),
                       hint="set image_size to [N, N] or use rotations: [0]")

    def dataset_refs(self, raw):
        refs = [(("dataset",), raw.get("dataset"))]
        extra = raw.get("extra_datasets")
        if isinstance(extra, list):
            refs.extend((("extra_datasets", i), name) for i, name in enumerate(extra))
        return [(path, name) for path, name in refs if isinstance(name, str)]

    def input_shape(self, family, spec):
        dataset = spec.datasets.get(family.dataset)
        if dataset is None:
            return None
        return SOURCES.get(dataset.source).episode_image_shape(dataset)

    def describe(self, family, loaded) -> FamilyDescription:
        """The episode shape; `check` has made sure the datasets are image folders of one image shape."""
        return FamilyDescription(kind="classification", input_shape=self.input_shape(family, loaded.spec),
                                 shots=family.shots, queries=family.queries, ways=family.ways)

    def build(self, family, loaded, *, seed: int, allow_code: bool = False) -> "ClassEpisodeSampler":
        import numpy as np

        from polytask.compiler.data import load_table

        description = self.describe(family, loaded)
        images, labels, names = [], [], []
        for name in [family.dataset, *family.extra_datasets]:
            table = load_table(name, loaded.spec.datasets[name], loaded, allow_code=allow_code, seed=seed)
            table.require(["image", "label"])
            offset = len(names)
            # Only classes that have examples: a TFDS ClassLabel (or a `limit`) may name more than it holds.
            present, compact = np.unique(np.asarray(table.columns["label"], np.int64), return_inverse=True)
            images.append(np.asarray(table.columns["image"], np.float32))
            labels.append(compact.astype(np.int64) + offset)
            class_names = table.class_names or [str(i) for i in range(int(present.max()) + 1)]
            prefix = f"{name}:" if family.extra_datasets else ""
            names.extend(prefix + class_names[int(c)] for c in present)
        return ClassEpisodeSampler(family, description, np.concatenate(images), np.concatenate(labels),
                                   names, seed)


class ClassEpisodeSampler(EpisodeSampler):
    """Episodes over an in-memory image array (Omniglot-sized data sets fit easily)."""

    def __init__(self, family, description: FamilyDescription, images: np.ndarray, labels: np.ndarray,
                 class_names: list[str], seed: int):
        import numpy as np

        from polytask.compiler.data.table import split_indices

        self.family = family
        self.description = description
        self.seed = seed
        self.images = images
        self.class_names = list(class_names)
        expected = description.input_shape
        if tuple(images.shape[1:]) != tuple(expected):
            raise DataError(f"images have shape {list(images.shape[1:])}, the family expects {list(expected)}",
                            hint="check the dataset's image_size and grayscale settings")
        num_base = len(class_names)
        rows_of = [np.flatnonzero(labels == c) for c in range(num_base)]
        base_split = split_indices(num_base, family.class_split, seed)
        rotations = sorted(set(int(r) for r in family.rotations))
        self.splits: dict[str, dict] = {}
        for split in SPLITS:
            base = base_split[split]
            classes = [(int(c), r) for c in base for r in rotations]
            longest = max((len(rows_of[c]) for c, _ in classes), default=0)
            matrix = np.zeros((len(classes), max(longest, 1)), np.int64)
            counts = np.zeros(len(classes), np.int64)
            for i, (c, _) in enumerate(classes):
                matrix[i, : len(rows_of[c])] = rows_of[c]
                counts[i] = len(rows_of[c])
            self.splits[split] = {
                "base_classes": [self.class_names[c] for c in base],
                "classes": [f"{self.class_names[c]}@{r}" if len(rotations) > 1 else self.class_names[c]
                            for c, r in classes],
                "rows": matrix,
                "counts": counts,
                "quarter_turns": np.asarray([r // 90 for _, r in classes], np.int64),
            }
        self._rotate = any(r != 0 for r in rotations)
        self._tensors: dict = {}

    # ------------------------------------------------------------------ checks

    def check(self, split: str, ways: int, shots: int, queries: int) -> None:
        """Raise a clear error when `split` cannot supply ways x (shots + queries) episodes."""
        info = self.splits[split]
        available = len(info["classes"])
        if available < ways:
            raise DataError(
                f"the meta-{split} split has {available} classes, fewer than the {ways} ways an episode needs",
                hint="lower `ways`, add rotations, or give this split a larger share in family.class_split")
        fewest = int(info["counts"].min()) if available else 0
        if fewest < shots + queries:
            raise DataError(
                f"some meta-{split} classes have only {fewest} images, but an episode takes "
                f"shots + queries = {shots + queries} from each class",
                hint=f"lower shots/queries so they add up to at most {fewest}")

    def info(self) -> dict:
        return {split: {"classes": len(v["classes"]), "base_classes": len(v["base_classes"])}
                for split, v in self.splits.items()}

    # ------------------------------------------------------------------ sampling

    def _constants(self, split: str):
        import tensorflow as tf

        with tf.init_scope():  # eager constants, shared by every traced sampler (tf.data, tf.function)
            if "images" not in self._tensors:
                self._tensors["images"] = tf.constant(self.images)
            if split not in self._tensors:
                info = self.splits[split]
                self._tensors[split] = (tf.constant(info["rows"]), tf.constant(info["counts"]),
                                        tf.constant(info["quarter_turns"]))
        return self._tensors["images"], self._tensors[split]

    def sample(self, split: str, index, tasks: int, *, ways: Optional[int] = None,
               shots: Optional[int] = None, queries: Optional[int] = None):
        import tensorflow as tf

        ways = ways or self.family.ways
        shots = shots or self.family.shots
        queries = queries or self.family.queries
        self.check(split, ways, shots, queries)
        per_class = shots + queries
        images, (rows, counts, turns) = self._constants(split)
        base = tf.constant(split_seed(self.seed, split), tf.int64)
        key = tf.random.experimental.stateless_fold_in(base, tf.cast(index, tf.int64))
        class_key, image_key = tf.unstack(tf.random.experimental.stateless_split(key, 2))
        num_classes = rows.shape[0]
        scores = tf.random.stateless_uniform([tasks, num_classes], class_key)
        classes = tf.math.top_k(scores, ways, sorted=True).indices  # [T, W] random distinct classes
        class_rows = tf.gather(rows, classes)  # [T, W, M]
        class_counts = tf.gather(counts, classes)  # [T, W]
        draw = tf.random.stateless_uniform(tf.shape(class_rows), image_key)
        valid = tf.range(rows.shape[1], dtype=tf.int64)[None, None, :] < class_counts[..., None]
        draw = tf.where(valid, draw, -1.0)  # padding never wins
        picked = tf.math.top_k(draw, per_class, sorted=True).indices  # [T, W, n]
        picked_rows = tf.gather(class_rows, picked, batch_dims=2)
        x = tf.gather(images, picked_rows)  # [T, W, n, H, W, C]
        if self._rotate:
            shape = tf.shape(x)
            flat = tf.reshape(x, tf.concat([[-1], shape[3:]], 0))
            options = tf.stack([tf.image.rot90(flat, k) for k in range(4)])  # [4, T*W*n, H, W, C]
            k = tf.reshape(tf.broadcast_to(tf.gather(turns, classes)[..., None], tf.shape(picked)), [-1])
            x = tf.reshape(tf.gather(tf.transpose(options, [1, 0, 2, 3, 4]), k, batch_dims=1), shape)
        labels = tf.broadcast_to(tf.range(ways, dtype=tf.int64)[None, :, None], [tasks, ways, per_class])
        image_shape = list(self.description.input_shape)

        def part(tensor, start, size, trailing):
            piece = tensor[:, :, start:start + size]
            return tf.reshape(piece, [tasks, ways * size] + trailing)

        return {
            "support_x": part(x, 0, shots, image_shape), "support_y": part(labels, 0, shots, []),
            "query_x": part(x, shots, queries, image_shape), "query_y": part(labels, shots, queries, []),
        }


def episodes_fit_data(ctx, family, names: list[str]) -> None:
    counts: list[int] = []
    for name in names:
        facts = ctx.facts.get(name)
        if facts is None or facts.class_counts is None:
            return  # data not checked (or unreadable, already reported)
        counts.extend(facts.class_counts)
    rotations = len(set(family.rotations)) or 1
    total = len(counts) * rotations
    needed = family.shots + family.queries
    if total < family.ways:
        ctx.report("PT304", f"{family.ways}-way episodes need {family.ways} classes, but the data has "
                   f"{len(counts)}" + (f" ({total} with {rotations} rotations)" if rotations > 1 else ""),
                   ("family", "ways"), hint="lower `ways`, add rotations, or add classes")
        return
    sizes = split_sizes(len(counts), [getattr(family.class_split, s) for s in SPLITS])
    for split, fraction, size in zip(SPLITS, [getattr(family.class_split, s) for s in SPLITS], sizes):
        if fraction <= 0 or size * rotations >= family.ways:
            continue
        path = ("family", "class_split", split)
        ctx.report("PT304", f"the meta-{split} split gets {size} of {len(counts)} classes ({fraction:g})"
                   + (f", {size * rotations} with rotations" if rotations > 1 else "")
                   + f": fewer than ways = {family.ways}",
                   path if path in ctx.source_map else ("family", "ways"),
                   hint="lower `ways`, add classes or rotations, or give this split a larger share in class_split")
    short = [c for c in counts if c < needed]
    if short:
        path = ("family", "queries") if ("family", "queries") in ctx.source_map else ("family", "shots")
        ctx.report("PT305", f"{family.shots} shots + {family.queries} queries need {needed} examples per class, but "
                   f"{len(short)} of {len(counts)} classes have fewer (smallest: {min(short)})", path,
                   hint=f"lower shots or queries so they add up to at most {min(short)}, or drop the small classes")
