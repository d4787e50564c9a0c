"""`polytask evaluate RUN_DIR` for meta-learning runs.

Two modes:

- episodes: `--episodes N [--ways W --shots K]` draws N fresh episodes of a split
  (default: meta-test) and reports query metrics as mean +/- 95% confidence interval after
  0..k adaptation steps (the adaptation curve);
- few-shot on a brand-new task: `--support DIR --query DIR`. For class families each DIR
  holds one subfolder per class with its images (one image per class is a valid support
  set); class names are the folder names. The model adapts on the support set the way its
  algorithm does (MAML family: inner gradient steps, `inner.eval_steps` of them; protonet:
  class prototypes) and predicts every query file. Regression families take a csv (header
  `x,y`) or an npz (arrays `x`, `y`) for each; `y` is optional in the query.

Images are read like training images: converted to the model's color mode, resized to the
training image_size (a differently sized image gets a notice, not an error) and inverted
when the dataset was. A color image for a grayscale model (or the reverse), a file that is
not an image, an empty class folder or a query class with no support folder end with a
`DataError` that names the file or folder and says how to fix it.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import numpy as np

from polytask.errors import DataError, PolytaskError, RunError, UsageError, special_file
from polytask.spec.registry import ALGORITHMS
from polytask.runtime.rundir import META_EXPORT_INFO_FILE, SAVED_MODEL_DIR, SPEC_FILE, RunDir, existing_run

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


# --------------------------------------------------------------------------- rebuilding the program


def _load_run(run_dir: Path):
    """The run's LoadedSpec, with dataset paths made absolute (the run may be evaluated from anywhere)."""
    from polytask.spec.loader import load_spec

    run_dir = existing_run(run_dir)
    run = RunDir(run_dir, writer=False)
    meta_file, spec_file = run.meta_export_info_file, run.spec_file
    if meta_file.exists():
        try:
            info = json.loads(meta_file.read_text(encoding="utf-8"))
            origin = Path(info["spec_path"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunError(f"cannot read {meta_file}: {exc}", hint="the run directory looks damaged; train again") from None
        if origin.exists():
            return load_spec(origin, check_data=False), info
        if spec_file.exists():
            return load_spec(spec_file, check_data=False), info
        raise RunError(f"the spec this run was trained from ({origin}) is gone and {run_dir} has no {SPEC_FILE}",
                       hint="restore the spec file or train again")
    if spec_file.exists():
        return load_spec(spec_file, check_data=False), {}
    raise RunError(f"{run_dir} holds no trained meta-learning run "
                   f"(no {SPEC_FILE} or {SAVED_MODEL_DIR}/{META_EXPORT_INFO_FILE})",
                   hint="pass the --out directory of a finished `polytask train` run")


def load_program(run_dir):
    """Compile the run's spec and restore its latest checkpoint; returns the MetaProgram."""
    import tensorflow as tf

    from polytask.compiler.meta import compile_program
    from polytask.runtime.strategy import create_strategy

    run_dir = Path(run_dir)
    loaded, info = _load_run(run_dir)
    if not loaded.spec.is_meta:
        raise RunError(f"{run_dir} is not a meta-learning run", hint="use `polytask evaluate` without meta options")
    strategy = create_strategy("one_device")
    program = compile_program(loaded, strategy=strategy, seed=info.get("seed"))
    from polytask.runtime.checkpoints import newest_intact
    from polytask.runtime.progress import notice

    checkpoints = RunDir(run_dir, writer=False).checkpoints
    choice = newest_intact(checkpoints)
    for message in choice.notices(checkpoints):
        notice(message)
    if choice.prefix is None:
        raise RunError(f"{run_dir} has no {'intact ' if choice.skipped else ''}checkpoint to evaluate"
                       + "".join(f"; {name}: {reason}" for name, reason in choice.skipped),
                       hint="train first, or check the RUN_DIR path")
    latest = str(choice.prefix)
    tf.train.Checkpoint(**program.checkpoint_items()).restore(latest).expect_partial()
    program.restored_from = latest
    return program


# --------------------------------------------------------------------------- public entry point


def check_options(*, episodes=None, ways=None, shots=None, support=None, query=None) -> None:
    """Options that conflict are a UsageError (exit 2), before any run directory is read."""
    if (support is None) != (query is None):
        raise UsageError("--support and --query go together",
                         hint="pass both: --support DIR --query DIR (csv/npz files for regression families)")
    given = [f"--{k}" for k, v in (("episodes", episodes), ("ways", ways), ("shots", shots)) if v is not None]
    if support is not None and given:
        raise UsageError(f"{'/'.join(given)} do not apply to --support/--query",
                         hint="the support set defines the ways and shots of a few-shot task")
    for role, value in (("support", support), ("query", query)):
        problem = special_file(value) if value is not None else None
        if problem:
            raise DataError(f"--{role}: {problem}", hint="pass a folder of class folders, or a csv/npz file")


def evaluate_meta_run(run_dir, *, split: str = "test", episodes: Optional[int] = None, ways: Optional[int] = None,
                      shots: Optional[int] = None, support=None, query=None, format: str = "text",
                      program=None) -> dict:
    """Evaluate a trained meta run: episodes of a split, or few-shot on support/query inputs.

    Returns a JSON-ready dict (`render_text` turns it into the CLI's text output).
    """
    check_options(episodes=episodes, ways=ways, shots=shots, support=support, query=query)
    program = program or load_program(run_dir)
    if support is not None:
        return few_shot(program, Path(support), Path(query))
    if split not in ("train", "validation", "test"):
        raise PolytaskError(f"unknown split '{split}'", hint="use test, validation or train")
    count = int(episodes or program.spec.training.eval_episodes)
    if count < 1:
        raise PolytaskError("--episodes must be at least 1")
    result = program.evaluate_episodes(split, count, ways=ways, shots=shots)
    return {"mode": "episodes", "run": str(run_dir), **result}


# --------------------------------------------------------------------------- few-shot


def few_shot(program, support: Path, query: Path) -> dict:
    if program.description.kind == "regression":
        return _few_shot_regression(program, support, query)
    return _few_shot_images(program, support, query)


def _image_settings(program):
    dataset = program.spec.datasets[program.spec.family.dataset]
    return tuple(dataset.image_size), bool(dataset.grayscale), bool(dataset.invert)


def _class_folders(root: Path, role: str) -> dict[str, list[Path]]:
    if not root.exists():
        raise DataError(f"the {role} folder {root} does not exist", hint=f"pass --{role} DIR with one subfolder per class")
    if not root.is_dir():
        raise DataError(f"--{role} {root} is not a folder",
                        hint="for image families pass a folder with one subfolder per class holding its images")
    classes: dict[str, list[Path]] = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(f for f in folder.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise DataError(f"class folder {folder} is empty",
                            hint=f"put at least one image in it, or remove it from the {role} set")
        classes[folder.name] = files
    stray = [p for p in root.iterdir() if p.is_file() and not p.name.startswith(".")]
    if not classes:
        raise DataError(f"the {role} folder {root} has no class subfolders"
                        + (f" (it holds files such as {stray[0].name})" if stray else ""),
                        hint=f"arrange it as {root}/<class name>/<image>.png")
    return classes


def _read_image(path: Path, size, grayscale: bool, invert: bool, notices: list[str]) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    from polytask.compiler.data.sources.image_folder import decode_image

    if path.suffix.lower() not in IMAGE_EXTENSIONS:
        raise DataError(f"{path} is not an image file (extension {path.suffix or 'none'})",
                        hint=f"use {', '.join(IMAGE_EXTENSIONS)} files, or move it out of the class folder")
    data = path.read_bytes()
    try:
        import io

        with Image.open(io.BytesIO(data)) as image:
            mode, (width, height) = image.mode, image.size
            colorful = False
            if grayscale and mode not in ("L", "1", "I", "I;16", "F", "LA", "P"):
                rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
                colorful = bool(np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).max() > 2)
            elif grayscale and mode == "P":
                rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
                colorful = bool(np.abs(rgb - rgb.mean(axis=-1, keepdims=True)).max() > 2)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        from polytask.compiler.data.sources.image_folder import unreadable_image_reason

        raise DataError(f"cannot read image {path}: {unreadable_image_reason(exc)}",
                        hint="replace or remove the file") from None
    if colorful:
        raise DataError(f"{path} is a color image ({mode}), but the model was trained on grayscale images",
                        hint="convert it to grayscale (e.g. `convert in.png -colorspace Gray out.png`)")
    if not grayscale and mode in ("L", "1", "LA", "I", "I;16", "F"):
        raise DataError(f"{path} is a grayscale image ({mode}), but the model was trained on color (RGB) images",
                        hint="convert it to RGB")
    if (height, width) != tuple(size):
        notices.append((f"{width}x{height}", f"{size[1]}x{size[0]}", path.name))
    return decode_image(data, str(path), size, grayscale, invert)


def _few_shot_images(program, support_dir: Path, query_dir: Path) -> dict:
    size, grayscale, invert = _image_settings(program)
    notices: list[str] = []
    support = _class_folders(support_dir, "support")
    query = _class_folders(query_dir, "query")
    missing = [name for name in query if name not in support]
    if missing:
        raise DataError(f"query class '{missing[0]}' has no folder in the support set {support_dir}",
                        hint=f"support classes are: {', '.join(support)}; every query class needs at least "
                        "one support image")
    names = list(support)
    ways = len(names)
    if ways < 2:
        raise DataError(f"the support set {support_dir} has one class ('{names[0]}'); a few-shot task needs at least two",
                        hint="add a folder per class to tell apart")
    head = program.architecture.output_shape[-1]
    if not program.algorithm.metric_based and ways > head:
        raise DataError(f"the support set has {ways} classes, but this {program.structure.algorithm} model's "
                        f"output layer has {head}",
                        hint=f"use at most {head} classes (protonet models take any number)")
    sx, sy = [], []
    for label, name in enumerate(names):
        for path in support[name]:
            sx.append(_read_image(path, size, grayscale, invert, notices))
            sy.append(label)
    qx, qy, qfiles = [], [], []
    for name, files in query.items():
        for path in files:
            qx.append(_read_image(path, size, grayscale, invert, notices))
            qy.append(names.index(name))
            qfiles.append(path)
    notices = _summarize_resizes(notices)
    logits = program.predict(np.stack(sx), np.asarray(sy, np.int64), np.stack(qx), ways=ways)
    probabilities = _softmax(logits)
    predicted = probabilities.argmax(axis=-1)
    predictions = [
        {"file": str(path.relative_to(query_dir)), "class": names[t], "predicted": names[p],
         "confidence": round(float(probabilities[i, p]), 4), "correct": bool(p == t)}
        for i, (path, t, p) in enumerate(zip(qfiles, qy, predicted))
    ]
    shots = {name: len(files) for name, files in support.items()}
    return {
        "mode": "few_shot",
        "algorithm": program.structure.algorithm,
        "adaptation": _adaptation(program),
        "classes": names,
        "support_images": shots,
        "query_images": len(qfiles),
        "accuracy": float(np.mean(predicted == np.asarray(qy))),
        "predictions": predictions,
        "notices": notices,
    }


def _summarize_resizes(resized: list) -> list[str]:
    """One notice per original size instead of one per file."""
    groups: dict = {}
    for original, target, name in resized:
        groups.setdefault((original, target), []).append(name)
    return [f"{len(names)} image(s) resized from {original} to {target} like the training images (e.g. {names[0]})"
            for (original, target), names in groups.items()]


def _adaptation(program) -> str:
    if program.algorithm.metric_based:
        return "class prototypes from the support embeddings"
    steps = program.algorithm.eval_steps
    what = "head" if program.algorithm.adapts == "head only" else "all parameters"
    return f"{steps} inner gradient step(s) on the support set ({what})"


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def _read_table(path: Path, role: str, need_y: bool) -> tuple[np.ndarray, Optional[np.ndarray]]:
    if not path.exists():
        raise DataError(f"the {role} file {path} does not exist", hint=f"pass --{role} FILE.csv or FILE.npz")
    if path.is_dir():
        raise DataError(f"--{role} {path} is a folder, but this is a regression family",
                        hint="pass a csv file with columns x,y (or an npz with arrays x and y)")
    if path.suffix.lower() == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: np.asarray(data[k], np.float64) for k in data.files}
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read {path}: {exc}", hint="save it with numpy.savez(path, x=..., y=...)") from None
    elif path.suffix.lower() == ".csv":
        import csv

        try:
            with path.open(newline="", encoding="utf-8") as handle:
                rows = list(csv.reader(handle))
        except (OSError, UnicodeDecodeError) as exc:
            raise DataError(f"cannot read {path}: {exc}", hint="use a UTF-8 csv with a header row x,y") from None
        if not rows:
            raise DataError(f"{path} is empty", hint="write a header row x,y and one row per point")
        header = [h.strip() for h in rows[0]]
        arrays = {}
        for column, name in enumerate(header):
            values = []
            for line, row in enumerate(rows[1:], start=2):
                try:
                    values.append(float(row[column]))
                except (ValueError, IndexError):
                    raise DataError(f"{path}:{line}: column '{name}' is not a number ({row[column] if column < len(row) else 'missing'!r})",
                                    hint="every cell must be a number") from None
            arrays[name] = np.asarray(values)
    else:
        raise DataError(f"{path} is neither .csv nor .npz", hint="regression few-shot sets are csv (x,y) or npz files")
    if "x" not in arrays:
        raise DataError(f"{path} has no column/array 'x' (has: {', '.join(arrays) or 'nothing'})",
                        hint="name the input column x and the target column y")
    if need_y and "y" not in arrays:
        raise DataError(f"{path} has no column/array 'y'", hint="the support set needs targets: add a y column")
    x = np.atleast_1d(arrays["x"])
    if len(x) == 0:  # before the reshape, which cannot infer a width from zero rows
        raise DataError(f"{path} has no rows", hint="add at least one point")
    x = x.reshape(len(x), -1).astype(np.float32)
    y = arrays.get("y")
    if y is not None:
        y = np.atleast_1d(y)
        y = y.reshape(len(y), -1).astype(np.float32)
        if len(y) != len(x):
            raise DataError(f"{path}: x has {len(x)} rows but y has {len(y)}", hint="give every x its y")
    return x, y


def _few_shot_regression(program, support: Path, query: Path) -> dict:
    sx, sy = _read_table(support, "support", need_y=True)
    qx, qy = _read_table(query, "query", need_y=False)
    expected = program.description.input_shape[0]
    for role, x in (("support", sx), ("query", qx)):
        if x.shape[1] != expected:
            raise DataError(f"the {role} x has {x.shape[1]} value(s) per row, the model takes {expected}",
                            hint="use one x per row for the sinusoid family")
    outputs = program.predict(sx, sy, qx)
    result: dict[str, Any] = {
        "mode": "few_shot",
        "algorithm": program.structure.algorithm,
        "adaptation": _adaptation(program),
        "support_points": int(len(sx)),
        "query_points": int(len(qx)),
        "predictions": [{"x": float(x[0]), "predicted": float(p[0]), **({"y": float(t[0])} if qy is not None else {})}
                        for x, p, t in zip(qx, outputs, qy if qy is not None else [None] * len(qx))],
        "notices": [],
    }
    if qy is not None:
        result["mse"] = float(np.mean((outputs - qy) ** 2))
    return result


# --------------------------------------------------------------------------- text output


def render_text(result: dict) -> str:
    """The human-readable form of an `evaluate_meta_run` result."""
    lines = []
    if result["mode"] == "episodes":
        shape = f"{result['ways']}-way " if result.get("ways") else ""
        lines.append(f"meta-{result['split']}: {result['episodes']} episodes, {shape}{result['shots']}-shot, "
                     f"{result['queries']} queries, {result['algorithm']}")
        for point in result["curve"]:
            metrics = ", ".join(f"{k} {v['mean']:.4f} +/- {v['ci95']:.4f}" for k, v in point.items() if k != "steps")
            label = "prototypes" if ALGORITHMS.get(result["algorithm"]).metric_based else f"after {point['steps']:>2} steps"
            lines.append(f"  {label}: {metrics}")
        return "\n".join(lines)
    lines.extend(f"note: {n}" for n in result.get("notices", []))
    lines.append(f"few-shot with {result['algorithm']}: {result['adaptation']}")
    if "accuracy" in result:
        lines.append(f"query accuracy: {result['accuracy']:.4f} ({result['query_images']} images, "
                     f"{len(result['classes'])} classes)")
        for p in result["predictions"]:
            mark = "ok" if p["correct"] else "WRONG"
            lines.append(f"  {p['file']}: {p['predicted']} ({p['confidence']:.2f}) [{mark}]")
    else:
        if "mse" in result:
            lines.append(f"query mse: {result['mse']:.4f} ({result['query_points']} points)")
        for p in result["predictions"]:
            lines.append(f"  x={p['x']:.4f} -> {p['predicted']:.4f}" + (f" (y={p['y']:.4f})" if "y" in p else ""))
    return "\n".join(lines)
