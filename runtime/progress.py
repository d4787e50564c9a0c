"""A one-line progress display with per-task losses; silent when stderr is not a terminal."""
from __future__ import annotations

import sys
import time
from typing import Mapping, Optional


class Progress:
    """`step 120/1000 [=====     ] 12% loss 0.53 | a 0.21 b 0.32 | 85 steps/s`, redrawn in place."""

    WIDTH = 24

    def __init__(self, total: int, start: int = 0, quiet: Optional[bool] = None, stream=None):
        self.stream = stream or sys.stderr
        self.quiet = (not self.stream.isatty()) if quiet is None else quiet
        self.total = max(int(total), 1)
        self.start = start
        self.started = time.perf_counter()
        self.last_draw = 0.0
        self.drawn = False

    def update(self, step: int, values: Mapping[str, float]) -> None:
        if self.quiet:
            return
        now = time.perf_counter()
        if now - self.last_draw < 0.1 and step < self.total:
            return
        self.last_draw = now
        done = int(self.WIDTH * step / self.total)
        rate = (step - self.start) / max(now - self.started, 1e-9)
        tasks = [(k.split("/", 1)[1], v) for k, v in values.items() if k.startswith("loss/")]
        shown = " ".join(f"{name} {value:.4g}" for name, value in tasks[:6])
        if len(tasks) > 6:
            shown += f" (+{len(tasks) - 6} tasks)"
        line = (f"step {step}/{self.total} [{'=' * done}{' ' * (self.WIDTH - done)}] "
                f"loss {values.get('loss', float('nan')):.4g}" + (f" | {shown}" if shown else "")
                + f" | {rate:.1f} steps/s")
        self.stream.write("\r" + line[:200] + "\033[K")
        self.stream.flush()
        self.drawn = True

    def note(self, message: str) -> None:
        """A message on its own line (evaluation results, early stopping)."""
        if self.quiet:
            return
        if self.drawn:
            self.stream.write("\r\033[K")
        self.stream.write(message + "\n")
        self.stream.flush()
        self.drawn = False

    def close(self) -> None:
        if not self.quiet and self.drawn:
            self.stream.write("\n")
            self.stream.flush()
            self.drawn = False


def notice(message: str, stream=None) -> None:
    """Something the user should know that is not an error (printed even with --quiet)."""
    stream = stream or sys.stderr
    stream.write(f"notice: {message}\n")
    stream.flush()
