"""How far long work has come, in words: done of total, the time spent, and the time left at the pace so far (a
sweep's trials, a table's cells and their steps); a sweep's line per trial, and reading it back from a step's log
(a table runs each sweep as a subprocess, whose log is all it sees of it)."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

TRIALS = "trials complete"
_TRIAL_LINE = re.compile(rf"Trial \d+: (?P<what>.*) · (?P<done>\d+)/(?P<total>\d+) {TRIALS}")


def duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 07 min``."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


@dataclass
class Pace:
    """Units of work done since ``started`` (``finished``; done earlier, by another run, counts for the total only),
    and so the time the rest should take."""

    started: float = field(default_factory=time.monotonic)
    finished: int = 0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def line(self, done: int, total: int, unit: str) -> str:
        """``3/8 trials · 2 min 10 s elapsed, about 3 min 37 s left``; the estimate once a unit has finished here."""
        text = f"{done}/{total} {unit} · {duration(self.elapsed())} elapsed"
        if self.finished and done < total:
            text += f", about {duration(self.elapsed() / self.finished * (total - done))} left"
        return text


def trial_line(number: int, what: str, pace: Pace, complete: int, target: int) -> str:
    """A sweep's line for a trial that ended: ``Trial 3: ndcg@10 0.4127 at alpha.value=0.5 · 4/8 trials complete ·
    2 min 10 s elapsed, about 3 min left`` (``what``: its objective at its setting, or ``failed``)."""
    return f"Trial {number}: {what} · {pace.line(complete, target, TRIALS)}"


@dataclass(frozen=True)
class SweepProgress:
    """What a sweep's log says of it: trials complete of its target, and how many ended in this run (``finished``,
    failed ones aside), its pace."""

    done: int
    total: int
    finished: int


def sweep_progress(log_text: str) -> SweepProgress | None:
    """The progress of the sweep whose output is ``log_text`` (its ``trial_line``s), None before its first trial."""
    found = list(_TRIAL_LINE.finditer(log_text))
    if not found:
        return None
    finished = sum(match["what"] != "failed" for match in found)
    return SweepProgress(int(found[-1]["done"]), int(found[-1]["total"]), finished)


class Ticker:
    """Calls ``tick`` every ``every`` seconds from a thread of its own while the ``with`` block runs (the standard
    library's ``threading.Timer`` fires once)."""

    def __init__(self, every: float, tick: Callable[[], None]):
        self.every, self.tick, self.stopped = every, tick, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stopped.wait(self.every):
            self.tick()

    def __enter__(self) -> Ticker:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        self.thread.join()
