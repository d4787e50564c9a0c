"""`polytask init [--pattern pooled|hard|meta] [PATH]`: write a commented starter spec.

Every starter uses data that needs no files (generated from the seed), so it passes
`polytask check` as written and trains as soon as it is saved; tests/test_cli_check.py
checks all three.
"""
from __future__ import annotations

import re
from pathlib import Path

import click

from polytask.cli import main
from polytask.errors import PolytaskError

_HEADER = """\
# polytask spec (format 1): {pattern} sharing.
#   check it:   polytask check {filename}
#   train it:   polytask train {filename}
# Reference: docs/spec-language.md. Editor completion: run
#   polytask schema -o polytask.schema.json
# and make the first line of this file
#   # yaml-language-server: $schema=polytask.schema.json
polytask: 1
name: {name}
seed: 0                       # every random choice (data splits, init, sampling) follows it
"""

_POOLED = """
# Named datasets; tasks refer to them by name. Sources: csv, npz, image_folder, tfrecord,
# sklearn, synthetic and python (opt-in). Relative paths resolve against this file's folder.
datasets:
  waves:
    source: synthetic
    generator: {kind: sinusoid, tasks: 3}   # columns: x, task_0, task_1, task_2
    samples: 2000
    split: {train: 0.8, validation: 0.1, test: 0.1}

# A task is T_i = (dataset, target, loss), with optional metrics, a loss weight and a
# sampling rate (how often its batches are drawn; separate from the weight).
tasks:
  wave_0: {dataset: waves, target: task_0, loss: mse, metrics: [mae]}
  wave_1: {dataset: waves, target: task_1, loss: mse, metrics: [mae]}
  wave_2: {dataset: waves, target: task_2, loss: mse, metrics: [mae], weight: 2.0}

# pooled: one model for every task, L = sum_i w_i L_i. These tasks share their inputs but
# not their targets, so the model is told which task each example is for (descriptor).
structure:
  sharing: pooled
  descriptor: onehot          # none | onehot | embedding
  model:
    - dense: {units: 64, activation: relu}
    - dense: {units: 64, activation: relu}
    # the output layer is inferred from each task's loss and target

training:
  steps: 2000
  batch_size: 64
  optimizer: {adam: {learning_rate: 1.0e-3}}
  sampling: uniform           # uniform | proportional | {temperature: 2.0}
  weighting: static           # equal | static (each task's weight) | uncertainty | gradnorm | pcgrad | dwa
  eval_every: 200
  checkpoint_every: 500
"""

_HARD = """
# Named datasets; tasks refer to them by name. Sources: csv, npz, image_folder, tfrecord,
# sklearn, synthetic and python (opt-in). Relative paths resolve against this file's folder.
datasets:
  mmoe:
    source: synthetic
    # MMoE's synthetic regression tasks (Ma et al. 2018): the label correlation is a knob
    generator: {kind: mmoe, tasks: 2, input_dim: 100, correlation: 0.9}
    samples: 5000
    split: {train: 0.8, validation: 0.1, test: 0.1}

# A task is T_i = (dataset, target, loss), with optional metrics, a loss weight and a
# sampling rate (how often its batches are drawn; separate from the weight).
tasks:
  first: {dataset: mmoe, target: task_0, loss: mse, metrics: [rmse]}
  second: {dataset: mmoe, target: task_1, loss: mse, metrics: [rmse]}

# hard: a shared trunk, then one head per task (the output layer is inferred).
structure:
  sharing: hard
  trunk:
    - dense: {units: 64, activation: relu}
    - dense: {units: 64, activation: relu}
  head:
    - dense: {units: 16, activation: relu}

training:
  steps: 3000
  batch_size: 128
  optimizer: {adam: {learning_rate: 1.0e-3}}
  schedule: {kind: cosine, warmup_steps: 100}
  sampling: proportional      # uniform | proportional | {temperature: 2.0}
  weighting: uncertainty      # equal | static | uncertainty | gradnorm | pcgrad | dwa (or a list)
  eval_every: 250
  checkpoint_every: 1000
  early_stopping: {metric: loss, patience: 5}
"""

_META = """
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

# meta: an algorithm (maml, fomaml, reptile, anil, metasgd, protonet) adapting a model
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
"""

TEMPLATES = {"pooled": _POOLED, "hard": _HARD, "meta": _META}


def starter_spec(pattern: str, name: str, filename: str) -> str:
    """The commented starter spec for a sharing pattern."""
    return _HEADER.format(pattern=pattern, name=name, filename=filename) + TEMPLATES[pattern]


def _spec_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]", "-", path.stem).strip("-._") or "my-spec"
    if not stem[0].isalnum():
        stem = f"spec-{stem}"
    return stem[:128]


@main.command()
@click.argument("path", required=False, default="polytask.yaml", type=click.Path(dir_okay=True))
@click.option("--pattern", type=click.Choice(sorted(TEMPLATES)), default="pooled", show_default=True,
              help="The sharing pattern of the starter spec.")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
def init(path, pattern, force):
    """Write a commented starter spec to PATH (default polytask.yaml) that passes `polytask check`.

    \b
    Examples:
      polytask init                          # pooled multi-task, ./polytask.yaml
      polytask init --pattern hard mtl.yaml
      polytask init --pattern meta specs/    # writes specs/polytask.yaml
    """
    from polytask.cli._common import user_errors

    @user_errors
    def run():
        target = Path(path)
        if target.is_dir():
            target = target / "polytask.yaml"
        if target.exists() and not force:
            raise PolytaskError(f"{target} already exists", hint="pass --force to overwrite it, or choose another PATH")
        if not target.parent.exists():
            raise PolytaskError(f"folder {target.parent} does not exist", hint="create it first")
        text = starter_spec(pattern, _spec_name(target), str(target))
        try:
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise PolytaskError(f"cannot write {target}: {exc.strerror or exc}") from None
        click.echo(f"wrote {target} ({pattern} sharing); next: polytask check {target}")

    run()
