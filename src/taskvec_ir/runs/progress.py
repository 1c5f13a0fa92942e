"""How far long work has come, in words: done of total, the time spent, and the time left at the pace so far (a
sweep's trials, a table's cells and their steps)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field


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
