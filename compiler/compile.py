"""Spec -> Program: the one entry point the runtime and CLI use to build a trainable program.

    program = compile_program(loaded, strategy=strategy, seed=0)

Pooled and hard specs are lowered here (plan -> data -> `MultiTaskProgram`); meta specs go
to `polytask.compiler.meta.compile_program`. The caller creates `strategy` (the runtime's
`create_strategy`) and passes it in. Call under no strategy scope: programs enter it themselves.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional


def compile_program(loaded, *, strategy, seed: Optional[int] = None, allow_code: bool = False,
                    steps: Optional[int] = None, jit_compile: Optional[bool] = None, tables: Optional[dict] = None):
    spec = loaded.spec
    seed = spec.seed if seed is None else int(seed)
    if spec.is_meta:
        from polytask.compiler.meta import compile_program as compile_meta_program

        return compile_meta_program(loaded, strategy=strategy, seed=seed, allow_code=allow_code,
                                    jit_compile=jit_compile)

    from polytask.compiler.multitask.data import assemble, load_tables
    from polytask.compiler.multitask.program import MultiTaskProgram
    from polytask.compiler.plan import build_plan

    if tables is None:
        tables = load_tables(loaded, allow_code=allow_code, seed=seed)
    column_info = {name: table.info for name, table in tables.items()}
    plan = build_plan(loaded, allow_code=allow_code, column_info=column_info)
    refuse_what_cannot_fit(plan)
    data = assemble(plan, spec, tables)
    from polytask.compiler.layers.keras_application import SPEC_FOLDER

    token = SPEC_FOLDER.set(Path(loaded.path).resolve().parent if getattr(loaded, "path", None) else None)
    try:  # layers that read files (a backbone's weights) resolve them against the spec's folder
        return MultiTaskProgram(plan, spec, data, strategy, seed=seed, jit_compile=jit_compile, steps=steps)
    finally:
        SPEC_FOLDER.reset(token)


#: Bytes per parameter while training: float32 weights, their gradients and two Adam slots.
TRAINING_BYTES_PER_PARAMETER = 16
#: Planned layers above which building the Keras model alone takes minutes on a CPU (ple with
#: 1,000 levels, about 6,000 layers, sat for over two minutes before its first step).
MAX_PLANNED_LAYERS = 2000


def available_memory() -> Optional[int]:
    """Bytes of memory this machine can still give (Linux MemAvailable, else free pages); None if unknown."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None


def refuse_what_cannot_fit(plan) -> None:
    """A planned model whose training state alone exceeds the free memory, or with so many layers that
    building them would take many minutes with no output, is refused before it is built (e.g. mmoe
    with 1e9 experts hung; ple with 1,000 levels sat for minutes in graph building)."""
    from polytask.errors import PolytaskError

    parameters = plan.totals["total"]
    needed, free = parameters * TRAINING_BYTES_PER_PARAMETER, available_memory()
    if free is not None and needed > free:
        raise PolytaskError(
            f"the model has {parameters:,} parameters: training needs at least {needed / 2**30:,.1f} GiB for its "
            f"weights, gradients and optimizer state, and this machine has {free / 2**30:,.1f} GiB free",
            hint="make the model smaller (fewer experts, levels or units); `polytask plan SPEC` shows where "
            "the parameters are")
    layers = plan.built_layers
    if layers > MAX_PLANNED_LAYERS:
        raise PolytaskError(
            f"the model has {layers:,} layers (experts x levels x their layers, heads, gates); building more than "
            f"{MAX_PLANNED_LAYERS:,} takes many minutes before the first step",
            hint="use fewer levels or experts; `polytask plan SPEC` lists them")
