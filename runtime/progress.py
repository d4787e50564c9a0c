"""The training progress display: a rich progress bar on a terminal, plain lines in a log.

On an interactive terminal (a TTY, and not CI) it is a `rich` progress bar redrawn in place:
step count, ETA, steps/s, the total loss and the first tasks' losses. In a non-interactive log
(stderr redirected to a file, or CI=true) carriage returns would make a mess, so it prints one
plain line every `interval` seconds instead (and a last one when training ends):

    step 1200/5000 (24%) | loss 0.5312 | a 0.2104 b 0.3208 | 85.3 steps/s | ETA 0:00:44
"""
from __future__ import annotations

import os
import sys
import time
from typing import Callable, Mapping, Optional

#: Task losses shown by name; the rest are counted.
SHOWN_TASKS = 6
BAR_WIDTH = 16


def interactive(stream) -> bool:
    """True on a terminal outside CI (CI services set CI=true and often fake a TTY)."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty()) and not ci


def _eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "?"
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def task_losses(values: Mapping[str, float]) -> str:
    """`a 0.21 b 0.32 (+3 tasks)` from the `loss/<task>` entries of a step's outputs."""
    tasks = [(k.split("/", 1)[1], v) for k, v in values.items() if k.startswith("loss/")]
    shown = " ".join(f"{name} {value:.4g}" for name, value in tasks[:SHOWN_TASKS])
    if len(tasks) > SHOWN_TASKS:
        shown += f" (+{len(tasks) - SHOWN_TASKS} tasks)"
    return shown


class Progress:
    """Progress of one training run from step `start` to `total` (see the module docstring)."""

    def __init__(self, total: int, start: int = 0, quiet: Optional[bool] = None, stream=None,
                 interval: float = 30.0, interactive_mode: Optional[bool] = None,
                 clock: Callable[[], float] = time.perf_counter):
        self.stream = stream or sys.stderr
        self.quiet = bool(quiet)
        self.total = max(int(total), 1)
        self.start = int(start)
        self.interval = float(interval)
        self.clock = clock
        self.started = clock()
        self.interactive = interactive(self.stream) if interactive_mode is None else interactive_mode
        self.last_line = self.started  # plain mode: when the last line was printed
        self.last_state: Optional[tuple[int, Mapping[str, float]]] = None
        self.lines = 0
        self._bar = None
        self._task = None
        self._last_refresh = 0.0

    # ------------------------------------------------------------------ shared

    def rate(self, step: int) -> float:
        return (step - self.start) / max(self.clock() - self.started, 1e-9)

    def _eta_seconds(self, step: int) -> float:
        rate = self.rate(step)
        return (self.total - step) / rate if rate > 0 else float("inf")

    def line(self, step: int, values: Mapping[str, float]) -> str:
        """The plain progress line for `step`."""
        losses = task_losses(values)
        return (f"step {step}/{self.total} ({100 * step // self.total}%) | loss {values.get('loss', float('nan')):.4g}"
                + (f" | {losses}" if losses else "")
                + f" | {self.rate(step):.1f} steps/s | ETA {_eta(self._eta_seconds(step))}")

    def update(self, step: int, values: Mapping[str, float]) -> None:
        if self.quiet:
            return
        self.last_state = (step, dict(values))
        if self.interactive:
            self._draw(step, values)
        elif self.clock() - self.last_line >= self.interval:
            self._print(self.line(step, values))
            self.last_line = self.clock()

    def note(self, message: str) -> None:
        """A message on its own line (evaluation results, early stopping)."""
        if self.quiet:
            return
        if self._bar is not None:
            self._bar.console.print(message, markup=False, highlight=False)
        else:
            self._print(message)

    def close(self) -> None:
        """End the display: the bar stays as drawn last; a log gets the last line if it had any."""
        if self.quiet:
            return
        if self._bar is not None:
            if self.last_state is not None:
                self._draw(*self.last_state, force=True)
            self._bar.stop()
            self._bar = None
        elif self.lines and self.last_state is not None and self.clock() > self.last_line:
            self._print(self.line(*self.last_state))
            self.last_line = self.clock()

    def _print(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.lines += 1

    # ------------------------------------------------------------------ rich bar

    def _draw(self, step: int, values: Mapping[str, float], force: bool = False) -> None:
        now = self.clock()
        if not force and now - self._last_refresh < 0.1 and step < self.total:
            return
        self._last_refresh = now
        if self._bar is None:
            self._start_bar()
        losses = task_losses(values)
        rate = f"{self.rate(step):.1f} steps/s"
        losses = f"loss {values.get('loss', float('nan')):.4g}" + (f" | {losses}" if losses else "")
        # On a narrow terminal the losses are cut, never the step count, ETA or rate.
        room = self._bar.console.width - (len("step  ETA 0:00:00   ") + 2 * len(str(self.total)) + 2 + BAR_WIDTH + len(rate) + 2)
        if len(losses) > room:
            losses = losses[:max(room - 1, 0)] + "…" if room > 1 else ""
        self._bar.update(self._task, completed=step, rate=rate, losses=losses)
        self._bar.refresh()

    def _start_bar(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
        from rich.progress import Progress as RichProgress
        from rich.table import Column

        def fixed():
            return Column(no_wrap=True)

        console = Console(file=self.stream, force_terminal=True, highlight=False)
        self._bar = RichProgress(TextColumn("step", table_column=fixed()), MofNCompleteColumn(table_column=fixed()),
                                 BarColumn(bar_width=BAR_WIDTH, table_column=fixed()), TextColumn("ETA", table_column=fixed()),
                                 TimeRemainingColumn(table_column=fixed()),
                                 TextColumn("{task.fields[rate]}", table_column=fixed()),
                                 TextColumn("{task.fields[losses]}", table_column=fixed()),
                                 console=console, auto_refresh=False)
        self._task = self._bar.add_task("train", total=self.total, completed=self.start, rate="", losses="")
        self._bar.start()


def notice(message: str, stream=None) -> None:
    """Something the user should know that is not an error (printed even with --quiet)."""
    stream = stream or sys.stderr
    stream.write(f"notice: {message}\n")
    stream.flush()
