"""Meta-learning: task families, episode samplers, a functional model and the MAML family
plus prototypical networks, lowered to one `MetaProgram` the generic runtime trains.

    from polytask.compiler.meta import compile_program
    program = compile_program(loaded, strategy=strategy, seed=0)   # a Program

`compile_program` is what `polytask.compiler.compile.compile_program` calls for
`sharing: meta` specs. The caller (the runtime) creates the tf.distribute strategy and
passes it in; the compiler never chooses one. TensorFlow is imported only when a program
is compiled; `polytask.compiler.meta.plan` never imports it.
"""
from __future__ import annotations

from typing import Optional


def compile_program(loaded, *, strategy, seed: Optional[int] = None, allow_code: bool = False,
                    jit_compile: Optional[bool] = None, **_ignored):
    """Lower a loaded `sharing: meta` spec to a `MetaProgram` built under `strategy`.

    Keyword arguments that only concern pooled and hard specs (`steps`, `tables`) are
    accepted and ignored, so `polytask.compiler.compile.compile_program` can pass its own.
    """
    from polytask.compiler.meta.program import MetaProgram

    return MetaProgram(loaded, strategy, seed=seed, allow_code=allow_code, jit_compile=jit_compile)


__all__ = ["compile_program"]
