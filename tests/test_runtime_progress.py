"""The progress display (runtime/progress.py): a rich bar with ETA, steps/s and per-task losses
on a terminal; plain lines every N seconds, never carriage returns, in a log or under CI."""
from __future__ import annotations

import io
import re

import pytest

from polytask.runtime.progress import Progress, interactive


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


VALUES = {"loss": 1.5, "loss/alpha": 0.5, "loss/beta": 1.0, "grad_norm": 2.0}


def test_a_log_gets_one_plain_line_per_interval(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    stream, clock = io.StringIO(), Clock()
    progress = Progress(100, stream=stream, interval=10, clock=clock)
    assert not progress.interactive
    for step in range(1, 101):
        clock.now = step * 0.25  # 4 steps/s: 25 s in all
        progress.update(step, VALUES)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and "\033" not in text
    lines = text.splitlines()
    # At 10 s and 20 s, then the last line at the end (25 s).
    assert [re.match(r"step (\d+)/100", line).group(1) for line in lines] == ["40", "80", "100"]
    assert lines[0] == "step 40/100 (40%) | loss 1.5 | alpha 0.5 beta 1 | 4.0 steps/s | ETA 0:00:15"
    assert lines[-1].endswith("ETA 0:00:00")


def test_a_short_run_in_a_log_prints_nothing():
    stream, clock = io.StringIO(), Clock()
    progress = Progress(10, stream=stream, interval=30, clock=clock)
    for step in range(1, 11):
        clock.now = step * 0.1
        progress.update(step, VALUES)
    progress.close()
    assert stream.getvalue() == ""


def test_notes_are_plain_lines_in_a_log():
    stream = io.StringIO()
    progress = Progress(10, stream=stream, interval=30)
    progress.note("step 5: a/accuracy 0.9")
    assert stream.getvalue() == "step 5: a/accuracy 0.9\n"


def _bar_output(monkeypatch, columns: int) -> str:
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("COLUMNS", str(columns))
    stream, clock = Terminal(), Clock()
    progress = Progress(100, stream=stream, interval=10, clock=clock)
    assert progress.interactive
    for step in range(1, 101):
        clock.now = step * 0.5
        progress.update(step, {**VALUES, **{f"loss/t{i}": 0.1 for i in range(8)}})
    progress.note("step 50: a/accuracy 0.9")
    progress.close()
    text = stream.getvalue()
    assert "\r" in text or "\033[" in text, "a terminal bar is redrawn in place"
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


def test_a_terminal_gets_a_rich_bar_with_eta_rate_and_task_losses(monkeypatch):
    plain = _bar_output(monkeypatch, 200)
    assert "100/100" in plain and "ETA" in plain and "2.0 steps/s" in plain
    assert "alpha 0.5 beta 1" in plain and "(+4 tasks)" in plain
    assert "step 50: a/accuracy 0.9" in plain
    assert not re.search(r"^step \d+/100 \(", plain, re.MULTILINE), "no plain lines on a terminal"


def test_a_narrow_terminal_cuts_the_losses_not_the_eta(monkeypatch):
    plain = _bar_output(monkeypatch, 80)
    last = plain.replace("\r", "\n").strip().splitlines()[-2]  # the final bar (the note follows it)
    assert "100/100" in last and "ETA 0:00:00" in last and "2.0 steps/s" in last, last
    assert "…" in last and len(last) <= 80


@pytest.mark.parametrize("value, expected", [("true", False), ("1", False), ("false", True), ("", True)])
def test_ci_counts_as_a_log_even_on_a_tty(monkeypatch, value, expected):
    monkeypatch.setenv("CI", value)
    assert interactive(Terminal()) is expected
    assert interactive(io.StringIO()) is False


def test_quiet_prints_nothing():
    stream = Terminal()
    progress = Progress(10, stream=stream, quiet=True, interactive_mode=True)
    progress.update(10, VALUES)
    progress.note("x")
    progress.close()
    assert stream.getvalue() == ""
