"""`constant`: the optimizer's learning rate throughout (after the warm-up, if any)."""
from __future__ import annotations

from typing import Literal

from polytask.compiler.schedules import Schedule, ScheduleParams
from polytask.spec.registry import SCHEDULES


class ConstantSchedule(ScheduleParams):
    kind: Literal["constant"] = "constant"
    """`constant`"""


@SCHEDULES.register
class Constant(Schedule):
    """The optimizer's learning rate throughout (after the warm-up)."""

    name = "constant"
    Params = ConstantSchedule
