"""`polytask evaluate RUN_DIR`: metrics of a trained run's SavedModel on a split.

Meta-learning runs also take `--episodes/--ways/--shots` or `--support DIR --query DIR`
(handled by polytask.runtime.meta_eval).
"""
from __future__ import annotations

import json
from pathlib import Path

import click

from polytask.cli import main
from polytask.cli._common import format_option, quiet_tensorflow
from polytask.cli._requires import needs_tensorflow


def _is_meta_run(run_dir: Path) -> bool:
    from polytask.runtime.rundir import RunDir

    run = RunDir(run_dir, writer=False)
    if run.meta_export_info_file.exists():
        return True
    program = run.program_file
    if program.exists():
        try:
            content = json.loads(program.read_text(encoding="utf-8"))
        except (ValueError, OSError):
            return False
        return isinstance(content, dict) and content.get("sharing") == "meta"  # any JSON may be there
    return False


@main.command()
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--split", default="test", type=click.Choice(["test", "validation", "train"]))
@format_option("text", "json")
@click.option("--episodes", type=click.IntRange(min=1), default=None, help="Meta runs: episodes to draw.")
@click.option("--ways", type=click.IntRange(min=2), default=None, help="Meta runs: classes per episode.")
@click.option("--shots", type=click.IntRange(min=1), default=None, help="Meta runs: support examples per class.")
@click.option("--support", type=click.Path(exists=False), default=None, help="Meta runs: support set of a new task.")
@click.option("--query", type=click.Path(exists=False), default=None, help="Meta runs: query set of a new task.")
@needs_tensorflow("evaluate")
def evaluate(run_dir, split, output_format, episodes, ways, shots, support, query):
    """Evaluate the trained model in RUN_DIR on a split (default: test)."""
    from polytask.runtime.meta_eval import check_options

    check_options(episodes=episodes, ways=ways, shots=shots, support=support, query=query)
    quiet_tensorflow()
    from polytask.runtime.rundir import existing_run

    path = existing_run(run_dir)
    meta_options = {"episodes": episodes, "ways": ways, "shots": shots, "support": support, "query": query}
    if _is_meta_run(path):
        from polytask.runtime.meta_eval import evaluate_meta_run

        options = {k: v for k, v in meta_options.items() if v is not None}
        result = evaluate_meta_run(path, split=split, format=output_format, **options)
        if output_format == "json":
            click.echo(json.dumps(result, indent=2, default=str))
        else:
            from polytask.runtime.meta_eval import render_text

            click.echo(render_text(result))
        return
    given = [f"--{k}" for k, v in meta_options.items() if v is not None]
    if given:
        from polytask.errors import UsageError

        raise UsageError(f"{', '.join(given)} apply to meta-learning runs only, and {run_dir} is a multi-task run",
                         hint="drop them, or pass the directory of a meta run")  # options that conflict with RUN_DIR: 2
    from polytask.runtime.serving import evaluate_run, format_evaluation

    result = evaluate_run(path, split=split)
    click.echo(json.dumps(result, indent=2) if output_format == "json" else format_evaluation(result))
