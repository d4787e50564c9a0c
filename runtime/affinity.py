"""`polytask affinity` without the CLI: measure TAG inter-task affinities and suggest groups.

    result = measure_affinity(load_spec("examples/digits_hard.yaml"), steps=500, every=5)
    grouping = suggest_groups(result, groups="auto")

The run is a plain multi-task training run of the spec's model (its optimizer, sampling,
weighting and batch size) for `steps` steps on one device; every `every` steps, before the
update, `polytask.compiler.affinity.lookahead.LookaheadProbe` measures the T x T lookahead
affinities on that step's batch. A pair's affinity is the mean over the measurements where
both tasks had examples in the batch. Nothing is checkpointed or exported: the run exists
to measure, and `--spec-out` writes specs to train the suggested groups properly.
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional

from polytask.errors import PolytaskError, RunError
from polytask.runtime.rundir import AFFINITY_DIR, AFFINITY_FILE, AFFINITY_PNG

DEFAULT_STEPS = 1000  # at most; a spec with fewer training.steps runs those
DEFAULT_EVERY = 5


def _refuse_unsupported(spec) -> None:
    if spec.is_meta:
        raise RunError("polytask affinity measures how the tasks of a multi-task spec help or hurt each other; "
                       "a meta spec has a task family, not a fixed set of tasks",
                       hint="use a spec with `tasks:` and `structure.sharing: hard` (or pooled)")
    if len(spec.tasks) < 2:
        raise RunError(f"polytask affinity needs at least 2 tasks; the spec has {len(spec.tasks)}",
                       hint="add tasks to the spec")


def measure_affinity(loaded, *, steps: Optional[int] = None, every: int = DEFAULT_EVERY, seed: Optional[int] = None,
                     lookahead_lr: Optional[float] = None, allow_code: bool = False, echo=None) -> dict:
    """Train the spec for `steps` steps, probing affinities every `every` steps; the averaged matrix."""
    import numpy as np

    from polytask.compiler.affinity.lookahead import LookaheadProbe, affinity_from
    from polytask.compiler.compile import compile_program
    from polytask.runtime.strategy import create_strategy
    from polytask.runtime.train import with_overrides

    _refuse_unsupported(loaded.spec)
    steps = int(steps or min(loaded.spec.training.steps, DEFAULT_STEPS))
    if every < 1:
        raise PolytaskError("--every must be at least 1")
    loaded = with_overrides(loaded, seed=seed, steps=steps)
    spec = loaded.spec
    strategy = create_strategy("one_device", "float32")
    program = compile_program(loaded, strategy=strategy, seed=spec.seed, allow_code=allow_code, steps=steps)
    probe = LookaheadProbe(program)
    tasks = list(program.tasks)
    size = len(tasks)
    sums = np.zeros((size, size))
    observed = np.zeros((size, size), np.int64)
    measurements = 0
    rates = []
    probe_seconds = 0.0
    started = time.perf_counter()
    for step in range(steps):
        batch = program.next_batch()
        if step % every == 0:
            rate = float(lookahead_lr) if lookahead_lr is not None else _current_learning_rate(program.optimizer)
            rates.append(rate)
            t0 = time.perf_counter()
            losses, after, counts = probe(batch, rate)
            z, valid = affinity_from(losses.numpy(), after.numpy(), counts.numpy())
            probe_seconds += time.perf_counter() - t0
            if not np.all(np.isfinite(z[valid])):
                raise RunError(f"an affinity became non-finite at step {step}",
                               hint="lower the learning rate or --lookahead-lr")
            sums += np.where(valid, z, 0.0)
            observed += valid
            measurements += 1
        values = program.train_on(batch)
        bad = [k for k, v in values.items() if not math.isfinite(v)]
        if bad:
            raise RunError(f"'{bad[0]}' became {values[bad[0]]} at step {step + 1} of the affinity run",
                           hint="lower the learning rate, or set training.gradient_clip_norm")
        if echo and (step + 1) % max(1, steps // 10) == 0:
            echo(f"affinity: step {step + 1}/{steps}")
    never = [(tasks[i], tasks[j]) for i in range(size) for j in range(size) if observed[i, j] == 0]
    if never:
        raise RunError(f"tasks '{never[0][0]}' and '{never[0][1]}' were never in the same batch during the affinity run",
                       hint="raise --steps, lower --every, or raise training.batch_size")
    return {
        "tasks": tasks,
        "affinity": (sums / observed).tolist(),
        "steps": steps,
        "every": every,
        "measurements": measurements,
        "pair_observations": observed.tolist(),
        "lookahead_lr": {"source": "--lookahead-lr" if lookahead_lr is not None else "optimizer",
                         "min": min(rates), "max": max(rates)},
        "sharing": spec.sharing,
        "seed": spec.seed,
        "seconds": round(time.perf_counter() - started, 3),
        "probe_seconds": round(probe_seconds, 3),
    }


def _current_learning_rate(optimizer) -> float:
    rate = optimizer.learning_rate
    return float(rate.numpy() if hasattr(rate, "numpy") else rate)


def suggest_groups(result: dict, *, groups="auto", overlap: bool = False, penalty: Optional[float] = None):
    """The grouping for `result["affinity"]`: `groups` is a count k (at most k groups) or "auto"."""
    from polytask.compiler.affinity import grouping

    matrix = result["affinity"]
    if groups == "auto":
        return grouping.auto_grouping(matrix, overlap=overlap,
                                      penalty=grouping.DEFAULT_PENALTY if penalty is None else penalty)
    count = int(groups)
    if count < 1:
        raise PolytaskError("--groups must be a positive number or 'auto'")
    return grouping.best_grouping(matrix, min(count, len(matrix)), overlap=overlap)


def named_groups(result: dict, found) -> list:
    return [[result["tasks"][i] for i in group] for group in found.groups]


def document(result: dict, found) -> dict:
    """What `--format json` prints: exactly tasks, affinity, groups, steps."""
    return {"tasks": result["tasks"], "affinity": result["affinity"], "groups": named_groups(result, found),
            "steps": result["steps"]}


def describe_grouping(result: dict, found, *, overlap: bool, requested) -> dict:
    """affinity.json's extra fields: how the groups were chosen and which group serves each task."""
    serving = found.serving(result["affinity"])
    return {"groups_requested": requested, "overlap": overlap, "total_gain": found.total,
            "search": "exact" if found.exact else "greedy",
            "served_by": {result["tasks"][t]: s for t, s in enumerate(serving)}}


# --------------------------------------------------------------------------- output


def format_table(result: dict, found, *, overlap: bool) -> str:
    tasks, matrix = result["tasks"], result["affinity"]
    width = max(8, max(len(t) for t in tasks) + 1)
    lines = [f"inter-task affinity ({result['sharing']} sharing, {result['steps']} steps, "
             f"{result['measurements']} lookaheads every {result['every']} steps, "
             f"lookahead SGD lr {_rate_text(result['lookahead_lr'])})",
             "row i, column j: 1 - L_j(shared params after a step on task i) / L_j (higher: i helps j)"]
    if result["sharing"] == "pooled":
        lines.append("pooled sharing: every parameter is shared, so this is about the one pooled model")
    lines.append(" " * width + "".join(f"{t:>{width + 2}}" for t in tasks))
    for i, task in enumerate(tasks):
        lines.append(f"{task:<{width}}" + "".join(f"{v:>+{width + 2}.2e}" for v in matrix[i]))
    kind = "overlapping groups" if overlap else "groups"
    asked = result.get("groups_requested")
    fewer = (f"; at most {asked} asked, {len(found.groups)} score{'s' if len(found.groups) == 1 else ''} higher"
             if isinstance(asked, int) and len(found.groups) < min(asked, len(tasks)) else "")
    lines.append(f"suggested {kind} ({'exact' if found.exact else 'greedy'} search, total gain {found.total:.3e}{fewer}):")
    serving = found.serving(matrix)
    for index, group in enumerate(found.groups):
        names = [tasks[t] + ("" if serving[t] == index else " (served by another group)") for t in group]
        lines.append(f"  {index + 1}. " + ", ".join(names))
    return "\n".join(lines)


def _rate_text(rate: dict) -> str:
    span = f"{rate['min']:.3g}" if rate["min"] == rate["max"] else f"{rate['min']:.3g}..{rate['max']:.3g}"
    return span + (" = the optimizer's" if rate["source"] == "optimizer" else "")


def _refuse_existing(paths) -> None:
    for path in paths:  # a file where a folder must go would fail only after the run, in mkdir
        blocker = next((parent for parent in Path(path).parents if parent.exists() and not parent.is_dir()), None)
        if blocker is not None:
            raise PolytaskError(f"{blocker} is a file, not a folder; cannot write {path}",
                                hint="choose another output directory")
    existing = [p for p in paths if p.exists()]
    if existing:
        raise PolytaskError(f"{existing[0]} already exists; polytask does not overwrite files",
                            hint="choose another output directory, or move the file away")


def write_outputs(out: Path, result: dict, found, extra: dict) -> list:
    """affinity.json and the affinity.png heatmap in `out` (never overwriting)."""
    import json

    out = Path(out)
    targets = [out / AFFINITY_FILE, out / AFFINITY_PNG]
    _refuse_existing(targets)
    out.mkdir(parents=True, exist_ok=True)
    content = {**document(result, found), **extra,
               **{k: result[k] for k in ("every", "measurements", "pair_observations", "lookahead_lr", "sharing",
                                         "seed", "seconds", "probe_seconds")}}
    targets[0].write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")
    heatmap(result, targets[1])
    return targets


def heatmap(result: dict, path: Path) -> None:
    """An annotated, diverging heatmap; the annotations share one power of ten (in the title)."""
    try:
        import matplotlib
    except ImportError:
        raise PolytaskError("the affinity.png heatmap needs matplotlib, which is not installed",
                            hint="pip install 'polytask[report]' (matplotlib)") from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    tasks, matrix = result["tasks"], np.asarray(result["affinity"])
    size = len(tasks)
    # Colours and the common power of ten follow the off-diagonal values (what the grouping
    # uses); the diagonal (a task's step on itself, usually far larger) is shown grey.
    off = matrix[~np.eye(size, dtype=bool)]
    peak = float(np.max(np.abs(off))) if off.size and np.max(np.abs(off)) > 0 else float(np.max(np.abs(matrix))) or 1.0
    exponent = int(math.floor(math.log10(peak))) - 1  # off-diagonal annotations have at most two digits
    scaled = matrix / 10.0 ** exponent
    side = max(4.0, 0.42 * size + 2.5)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = np.where(np.eye(size, dtype=bool), np.nan, matrix)
    cmap = matplotlib.colormaps["RdBu_r"].with_extremes(bad="#d9d9d9")
    image = ax.imshow(shown, cmap=cmap, vmin=-peak, vmax=peak)
    font = max(5.0, min(10.0, 220.0 / size))
    for i in range(size):
        for j in range(size):
            value = scaled[i, j]
            ax.text(j, i, f"{value:.0f}" if abs(value) >= 9.5 else f"{value:.1f}", ha="center", va="center",
                    fontsize=font, color="white" if i != j and abs(matrix[i, j]) > 0.6 * peak else "black")
    ax.set_xticks(range(size), tasks, rotation=90, fontsize=font + 1)
    ax.set_yticks(range(size), tasks, fontsize=font + 1)
    ax.set_xlabel("task j (affected)")
    ax.set_ylabel("task i (lookahead step on its loss)")
    ax.set_title(f"inter-task affinity 1 - L_j(after a step on i) / L_j\ncells x 1e{exponent}; diagonal (grey) not coloured",
                 fontsize=10)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def group_specs(loaded, result: dict, found, *, allow_code: bool = False) -> list:
    """One resolved spec (a dict) per suggested group, each ready for `polytask train`."""
    from polytask.compiler.multitask.data import load_tables
    from polytask.compiler.plan import build_plan
    from polytask.runtime.train import with_overrides

    spec = loaded.spec
    tables = load_tables(loaded, allow_code=allow_code, seed=spec.seed)
    plan = build_plan(loaded, allow_code=allow_code, column_info={n: t.info for n, t in tables.items()})
    inputs = {name: t.input_columns for name, t in plan.tasks.items()}
    specs = []
    for index, group in enumerate(named_groups(result, found)):
        kinds = {w.kind for w in spec.training.weighting}
        single = with_overrides(loaded, tasks=group, inputs=inputs,
                                equal_weighting=len(group) == 1 or "static" in kinds)
        training = single.spec.training
        stopping = training.early_stopping
        if stopping is not None and "/" in stopping.metric and stopping.metric.split("/", 1)[0] not in group:
            training = training.model_copy(update={"early_stopping": stopping.model_copy(update={"metric": "loss", "mode": "min"})})
        used = {single.spec.tasks[t].dataset for t in group}
        narrowed = single.spec.model_copy(update={
            "name": f"{spec.name}-group{index + 1}", "training": training,
            "datasets": {k: v for k, v in single.spec.datasets.items() if k in used}})
        content = narrowed.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_unset=True)
        for dataset in content.get("datasets", {}).values():  # paths made absolute: the spec can live anywhere
            if "path" in dataset:
                dataset["path"] = str(loaded.resolve_path(dataset["path"]))
        specs.append((f"{spec.name}-group{index + 1}.yaml", content))
    return specs


def write_group_specs(out: Path, loaded, result: dict, found, *, allow_code: bool = False) -> list:
    import yaml

    out = Path(out)
    specs = group_specs(loaded, result, found, allow_code=allow_code)
    targets = [out / name for name, _ in specs]
    _refuse_existing(targets)
    out.mkdir(parents=True, exist_ok=True)
    for target, (_, content) in zip(targets, specs):
        tasks = ", ".join(content["tasks"])
        target.write_text(f"# group suggested by `polytask affinity {loaded.path}`: {tasks}\n"
                          + yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return targets


WRITE_AFFINITY_HINT = "write it with `polytask affinity SPEC --out DIR`"


def affinity_file(path: Path) -> Optional[Path]:
    """The affinity.json that `path` names: the file itself, DIR/affinity.json (`polytask affinity
    --out DIR`) or RUN_DIR/affinity/affinity.json (`train --baseline groups`); None if there is none."""
    path = Path(path)
    for candidate in (path, path / AFFINITY_FILE, path / AFFINITY_DIR / AFFINITY_FILE):
        if candidate.is_file():
            return candidate
    return None


def read_affinity(file: Path) -> dict:
    """affinity.json's content once it has 'tasks' and a square 'affinity' matrix; a RunError naming the file otherwise."""
    import json

    try:
        content = json.loads(Path(file).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunError(f"cannot read {file} as an affinity file: {exc}", hint=WRITE_AFFINITY_HINT) from None
    tasks = content.get("tasks") if isinstance(content, dict) else None
    matrix = content.get("affinity") if isinstance(content, dict) else None
    ok = (isinstance(tasks, list) and isinstance(matrix, list) and len(matrix) == len(tasks)
          and all(isinstance(row, list) and len(row) == len(tasks) for row in matrix))
    if not ok:
        raise RunError(f"{file} is not an affinity file (it needs 'tasks' and a square 'affinity' matrix)",
                       hint=WRITE_AFFINITY_HINT)
    import math

    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                      or not math.isfinite(value)):
                raise RunError(f"{file} is damaged: affinity[{i}][{j}] is {value!r}, not a finite number",
                               hint=WRITE_AFFINITY_HINT)
    groups = content.get("groups")
    if groups is not None and not (isinstance(groups, list) and all(
            isinstance(group, list) and all(isinstance(t, str) and t in tasks for t in group) for group in groups)):
        raise RunError(f"{file} is damaged: 'groups' must be lists of its task names ({', '.join(map(str, tasks))})",
                       hint=WRITE_AFFINITY_HINT)
    return content


def load_groups(path: Path) -> dict:
    """The task groups of a previous affinity measurement (see `affinity_file` for where it is looked for)."""
    file = affinity_file(path)
    if file is None:
        raise PolytaskError(f"no {AFFINITY_FILE} at {path} (nor in {Path(path) / AFFINITY_DIR})",
                            hint="pass the --out directory of a previous `polytask affinity SPEC --out DIR`, or a "
                            "`train --baseline groups` run directory")
    content = read_affinity(file)
    groups = content.get("groups")  # read_affinity checked their shape when present
    if groups is None:
        raise RunError(f"{file} has no task groups (a list of lists of task names under 'groups')",
                       hint=WRITE_AFFINITY_HINT)
    return {"tasks": content["tasks"], "groups": groups, "served_by": content.get("served_by"), "file": str(file)}
