"""`constant`: the optimizer's learning rate throughout (after the warm-up, if any)."""
from __future__ import annotations

from pydantic import Field

from typing import Literal

from polytask.compiler.schedules import Schedule, ScheduleParams
from polytask.spec.registry import SCHEDULES


class ConstantSchedule(ScheduleParams):
    kind: Literal["constant"] = Field("constant", description='`constant`')


@SCHEDULES.register
class Constant(Schedule):
    """The optimizer's learning rate throughout (after the warm-up)."""

    name = "constant"
    Params = ConstantSchedule
