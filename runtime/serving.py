"""Using a finished run's SavedModel: evaluation on a split and predictions for new inputs.

Both read RUN_DIR/saved_model (one signature per task, raw inputs in, the loss's
predictions out) and RUN_DIR/saved_model/polytask.json (tasks, input shape, class names);
evaluation also rebuilds the split from RUN_DIR/spec.yaml (absolute data paths).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np

from polytask.errors import DataError, PolytaskError, RunError
from polytask.runtime.rundir import (BASELINE_DIR, EXPORT_INFO_FILE, GROUPS_DIR, SAVED_MODEL_DIR, SEED_DIR_PREFIX,
                                     SPEC_FILE, RunDir, existing_run)


def read_run(run_dir) -> tuple[Path, dict]:
    run_dir = existing_run(run_dir)
    run = RunDir(run_dir, writer=False)
    info_file = run.export_info_file
    if not info_file.exists():
        if run.meta_export_info_file.exists():
            raise RunError(f"{run_dir} is a meta-learning run; `predict` serves multi-task runs",
                           hint=f"adapt it to a new task with `polytask evaluate {run_dir} --support DIR --query DIR`")
        seeds = sorted(p.name for p in run_dir.glob(f"{SEED_DIR_PREFIX}*") if p.is_dir())
        if seeds:
            raise RunError(f"{run_dir} is a --seeds comparison (its numbers are in {run_dir / 'report.json'}), "
                           "not one run", hint=f"evaluate one seed's run, e.g. {run_dir / seeds[0]}")
        if run_dir.parent.name in (BASELINE_DIR, GROUPS_DIR) and (run_dir.parent.parent / SPEC_FILE).is_file():
            raise RunError(f"{run_dir} is a baseline arm of {run_dir.parent.parent}; baseline arms are trained "
                           "for their test metrics (in its report.json) and are not exported",
                           hint=f"evaluate the multi-task run: {run_dir.parent.parent}")
        raise RunError(f"{run_dir} has no exported model ({SAVED_MODEL_DIR}/{EXPORT_INFO_FILE})",
                       hint=f"the run may not have finished; finish it with {resume_command(run_dir)}")
    from pydantic import ValidationError

    from polytask.compiler.program import ExportInfo

    try:
        info = ExportInfo.model_validate(json.loads(info_file.read_text(encoding="utf-8"))).model_dump()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "the top level"
        raise RunError(f"cannot read {info_file}: not the export description polytask writes "
                       f"({where}: {first['msg']})", hint=reexport_hint(run_dir)) from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {info_file}: {exc}", hint=reexport_hint(run_dir)) from None
    return run_dir, info


def reexport_hint(run_dir: Path) -> str:
    """How to write a run's export again from its last checkpoint."""
    return f"the export is damaged; write it again from the run's last checkpoint with {resume_command(run_dir)}"


def resume_command(run_dir: Path) -> str:
    """`polytask train ... --resume` that continues this run as it was started: from the run's own
    spec.yaml (its settings and step count as trained, which the original spec file may no longer
    have, e.g. after `--steps`), else from the spec it names, else SPEC."""
    run = RunDir(run_dir, writer=False)
    if run.spec_file.is_file():
        return f"`polytask train {run.spec_file} --out {run_dir} --resume`"
    try:
        spec = str(json.loads(run.program_file.read_text(encoding="utf-8"))["spec"])
    except (OSError, ValueError, KeyError, TypeError):
        spec = "SPEC"
    return f"`polytask train {spec} --out {run_dir} --resume`"


def load_saved_model(run_dir: Path):
    import tensorflow as tf

    saved_model = RunDir(run_dir, writer=False).saved_model
    try:
        return tf.saved_model.load(str(saved_model))
    except Exception as exc:  # TensorFlow raises many kinds on a damaged export (OpError, IndexError, ...)
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        raise RunError(f"cannot load the SavedModel in {saved_model}: {first}", hint=reexport_hint(run_dir)) from None


def run_signature(model, task: str, x: np.ndarray, batch: int = 4096) -> dict[str, np.ndarray]:
    import tensorflow as tf

    fn = model.signatures[task]
    parts = [fn(x=tf.constant(x[i: i + batch], tf.float32)) for i in range(0, len(x), batch)]
    if not parts:
        return {}
    return {key: np.concatenate([p[key].numpy() for p in parts]) for key in parts[0]}


def evaluate_run(run_dir, split: str = "test") -> dict:
    """Per-task loss and metrics of the exported model on a split of the run's data."""
    from polytask.compiler.metrics import compute
    from polytask.spec.registry import LOSSES
    from polytask.compiler.multitask.data import assemble, load_tables
    from polytask.compiler.plan import build_plan
    from polytask.spec.loader import load_spec

    run_dir, info = read_run(run_dir)
    if split not in ("train", "validation", "test"):
        raise PolytaskError(f"unknown split '{split}'", hint="use test, validation or train")
    spec_file = RunDir(run_dir, writer=False).spec_file
    if not spec_file.exists():
        raise RunError(f"{run_dir} has no {SPEC_FILE}", hint="pass the --out directory of a `polytask train` run")
    loaded = load_spec(spec_file, check_data=False)
    missing = [name for name in loaded.spec.tasks if name not in info["tasks"]]
    if missing:
        raise RunError(f"the run's {spec_file.name} has task '{missing[0]}', which its export "
                       f"({EXPORT_INFO_FILE}: {', '.join(info['tasks'])}) does not serve; the two files are "
                       "from different runs", hint=f"{spec_file} is not the spec this run was trained with (replaced or "
                       "edited): put the run's own copy back, or evaluate a run trained from this spec")
    try:
        tables = load_tables(loaded, allow_code=False)
    except DataError as exc:  # the spec.yaml here is the run's copy: point at the data, not at editing it
        exc.hint = (f"evaluate reads the training data from the paths in the run's {spec_file}: "
                    "restore the data, or fix the path there")
        raise
    plan = build_plan(loaded, column_info={n: t.info for n, t in tables.items()})
    data = assemble(plan, loaded.spec, tables)
    arrays = data.splits[split]
    if all(arrays.size(i) == 0 for i in range(len(data.tasks))):
        raise DataError(f"the {split} split has no labelled rows for any task",
                        hint=f"evaluate another split (--split), or give `{split}` a fraction under datasets.<name>.split")
    model = load_saved_model(run_dir)
    metrics: dict[str, float] = {}
    per_task = {}
    total = 0.0
    for i, name in enumerate(data.tasks):
        if arrays.size(i) == 0:
            continue
        task = info["tasks"][name]
        predictions = run_signature(model, name, arrays.task_inputs(i))
        labels = arrays.labels[i]
        loss = float(np.mean(LOSSES.get(task["loss"]).bound(task.get("loss_params")).numpy_loss(labels, predictions)))
        values = {"loss": loss, **compute(task["metrics"], labels, predictions)}
        per_task[name] = {"examples": int(arrays.size(i)), **values}
        metrics.update({f"{name}/{k}": v for k, v in values.items()})
        total += float(task.get("weight", 1.0)) * loss
    metrics["loss"] = total
    return {"run": str(run_dir), "split": split, "tasks": per_task, "metrics": metrics}


def format_evaluation(result: dict) -> str:
    lines = [f"{result['run']}: {result['split']} split"]
    for name, values in result["tasks"].items():
        shown = "  ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "examples")
        lines.append(f"  {name:<16} n={values['examples']:<6} {shown}")
    lines.append(f"  weighted loss {result['metrics']['loss']:.4f}")
    return "\n".join(lines)


# --------------------------------------------------------------------------- predict


def read_inputs(path: Path, task_info: dict, input_shape: list[int]) -> np.ndarray:
    """Inputs for one task from a csv (its input columns, or exactly the input width) or an npz."""
    if not path.exists():
        raise DataError(f"no such input file: {path}", hint="pass a .csv or .npz file")
    suffix = path.suffix.lower()
    width = int(np.prod(input_shape))
    if suffix == ".npz":
        import zipfile

        if not zipfile.is_zipfile(path):  # np.load would try to unpickle it and blame pickling
            raise DataError(f"{path} is not an npz archive", hint="write it with numpy.savez(path, x=...)")
        x = _npz_inputs(path, task_info.get("input_columns") or [])
    elif suffix in (".csv", ".txt"):
        from polytask.compiler.data.sources.csv import delimiter_hint, looks_headerless, read_csv

        wanted = task_info.get("input_columns") or []
        header, columns_data = read_csv(path, ",", inputs=wanted, delimiter_settable=False)
        if wanted and all(c in header for c in wanted):
            parts = [np.asarray(columns_data[c], np.float32).reshape(-1, 1) if np.ndim(columns_data[c]) == 1
                     else np.asarray(columns_data[c], np.float32) for c in wanted]
            x = np.concatenate(parts, axis=1)
        elif len(header) == width:
            if looks_headerless(header):  # a headerless file: its first row would be lost
                raise DataError(f"the first line of {path} holds numbers, not column names",
                                hint="predict reads a csv with a header row: the task's input columns "
                                f"({', '.join(wanted[:8])}{'...' if len(wanted) > 8 else ''}) or any {width} names")
            x = np.stack([np.asarray(columns_data[c], np.float32) for c in header], axis=1)
        else:
            missing = [c for c in wanted if c not in header][:5]
            raise DataError(
                f"{path} has columns {', '.join(_short(h) for h in header[:8])}{'...' if len(header) > 8 else ''} "
                f"but the task reads {', '.join(wanted[:8])}{'...' if len(wanted) > 8 else ''}",
                hint=delimiter_hint(path, ",", settable=False) or (f"missing: {', '.join(missing)}; " if missing else "")
                + f"give the csv the task's input columns (or exactly {width} numeric columns)")
        if np.isnan(x).any():
            row = int(np.argwhere(np.isnan(x))[0][0])
            raise DataError(f"{path}: row {row + 2} has an empty input cell", hint="inputs may not be missing")
    else:
        kind = f"'{suffix}' files" if suffix else "files without an extension"
        raise DataError(f"{path}: predict reads .csv and .npz inputs, not {kind}",
                        hint="use a .csv (with a header) or an .npz file")
    if tuple(x.shape[1:]) != tuple(input_shape):  # never reshaped: (2, 8, 8) is not 2 rows of 64 by guesswork
        raise DataError(f"{path}: inputs have shape {list(x.shape[1:])} per row, the model takes {list(input_shape)}",
                        hint=f"pass an array of shape (rows, {', '.join(map(str, input_shape))}): the same features "
                        "the task was trained on")
    if len(x) == 0:
        raise DataError(f"{path} has no rows", hint="pass at least one input row")
    return x.astype(np.float32)


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _npz_inputs(path: Path, columns: list) -> np.ndarray:
    """The input rows of an npz: its input-column arrays side by side, or its one (or `x`) array."""
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read {path} as npz: {exc}", hint="write it with numpy.savez") from None
    with archive as arrays:
        names = list(arrays.files)
        if not names:
            raise DataError(f"{path} holds no arrays", hint="write it with numpy.savez(path, x=...)")
        if all(c in names for c in columns) and columns:
            parts = [_numeric_array(arrays, c, path) for c in columns]
            rows = {c: part.shape[0] for c, part in zip(columns, parts)}  # _numeric_array refuses 0-d arrays
            other = next((c for c in columns if rows[c] != rows[columns[0]]), None)
            if other is not None:
                raise DataError(f"{path}: the input arrays have different numbers of rows ('{columns[0]}' "
                                f"{rows[columns[0]]}, '{other}' {rows[other]})",
                                hint="give every input array one row per example")
            x = parts[0] if len(parts) == 1 and parts[0].ndim >= 3 else np.concatenate(
                [p.reshape(len(p), -1) for p in parts], axis=1)
        elif len(names) == 1 or "x" in names:
            x = _numeric_array(arrays, "x" if "x" in names else names[0], path)
        else:
            raise DataError(f"{path} holds arrays {', '.join(names)}; which one is the input?",
                            hint=f"name the input array 'x' or {', '.join(columns) or 'after the input column'}")
    return x


def _numeric_array(arrays, name: str, path: Path) -> np.ndarray:
    """Array `name` of an npz as float32 rows; text, complex or object arrays are a DataError."""
    try:
        array = arrays[name]
    except ValueError as exc:  # object arrays need pickle, which stays off
        raise DataError(f"{path}: array '{name}' cannot be read without pickle ({exc})",
                        hint="save plain numeric arrays") from None
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == bool):
        kind = "text" if array.dtype.kind in "SU" else str(array.dtype)
        raise DataError(f"{path}: array '{name}' holds {kind} values, not real numbers",
                        hint="inputs must be numeric (encode categories as integers)")
    if array.ndim == 0:
        raise DataError(f"{path}: array '{name}' is a single value, not rows of inputs",
                        hint="save an array with one row per input")
    from polytask.compiler.data.table import float32_problem

    problem = float32_problem(array) or (f"at [{', '.join(map(str, np.argwhere(np.isnan(array))[0]))}] is NaN"
                                         if array.dtype.kind == "f" and np.isnan(array).any() else None)
    if problem:
        raise DataError(f"{path}: array '{name}' {problem}", hint="inputs must be finite numbers within float32's range")
    return array.astype(np.float32)


def predict_run(run_dir, task: str, input_path, output: Optional[str] = None) -> dict:
    """Predictions of `task` for the rows of `input_path`; written to `output` (.csv or .npz) when given."""
    run_dir, info = read_run(run_dir)
    if task not in info["tasks"]:
        import difflib

        close = difflib.get_close_matches(task, list(info["tasks"]), n=1)
        raise PolytaskError(f"the run has no task '{task}'",
                            hint=(f"did you mean '{close[0]}'? " if close else "") + f"tasks: {', '.join(info['tasks'])}")
    task_info = info["tasks"][task]
    x = read_inputs(Path(input_path), task_info, info["input_shape"])
    model = load_saved_model(run_dir)
    predictions = run_signature(model, task, x)
    table = prediction_table(predictions, task_info)
    if output:
        write_predictions(Path(output), table, predictions)
    return {"task": task, "rows": len(x), "columns": list(table), "table": table}


def prediction_table(predictions: dict, task_info: dict) -> dict[str, list]:
    names = task_info.get("class_names")
    out: dict[str, list] = {}
    if "probabilities" in predictions:
        classes = predictions["class"].astype(int)
        out["class"] = [names[c] if names and c < len(names) else int(c) for c in classes]
        for k in range(predictions["probabilities"].shape[1]):
            label = names[k] if names and k < len(names) else str(k)
            out[f"p_{label}"] = predictions["probabilities"][:, k].tolist()
    elif "probability" in predictions:
        out["class"] = predictions["class"].astype(int).tolist()
        out["probability"] = predictions["probability"].tolist()
    else:
        values = predictions["prediction"].reshape(len(predictions["prediction"]), -1)
        if values.shape[1] == 1:
            out["prediction"] = values[:, 0].tolist()
        else:
            for k in range(values.shape[1]):
                out[f"prediction_{k}"] = values[:, k].tolist()
    return out


def table_csv(table: dict[str, list]) -> str:
    columns = list(table)
    rows = zip(*(table[c] for c in columns))
    fmt = lambda v: f"{v:.6g}" if isinstance(v, float) else str(v)
    return "\n".join([",".join(columns)] + [",".join(fmt(v) for v in row) for row in rows]) + "\n"


def write_predictions(path: Path, table: dict, predictions: dict) -> None:
    try:
        if path.suffix.lower() == ".npz":
            np.savez(path, **predictions)
        else:
            path.write_text(table_csv(table), encoding="utf-8")
    except OSError as exc:
        raise RunError(f"cannot write {path}: {exc.strerror}", hint="choose a writable --output path") from None
