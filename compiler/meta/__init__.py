"""Meta-learning: task families, episode samplers, a functional model and the MAML family
plus prototypical networks, lowered to one `MetaProgram` the generic runtime trains.

    from polytask.compiler.meta import compile_program
    program = compile_program(loaded, strategy=strategy, seed=0)   # a Program

`compile_program` is what `polytask.compiler.compile.compile_program` calls for
`sharing: meta` specs (`compile_meta` is the same function). TensorFlow is imported only
when a program is compiled; `polytask.compiler.meta.plan` never imports it.
"""
from __future__ import annotations

from typing import Optional


def compile_program(loaded, *, strategy=None, seed: Optional[int] = None, allow_code: bool = False,
                    jit_compile: Optional[bool] = None, **_ignored):
    """Lower a loaded `sharing: meta` spec to a `MetaProgram` under `strategy` (default: auto)."""
    from polytask.compiler.meta.program import MetaProgram

    if strategy is None:
        from polytask.runtime.strategy import create_strategy

        strategy = create_strategy(loaded.spec.runtime.strategy, loaded.spec.runtime.precision)
    return MetaProgram(loaded, strategy, seed=seed, allow_code=allow_code, jit_compile=jit_compile)


compile_meta = compile_program

__all__ = ["compile_program", "compile_meta"]
