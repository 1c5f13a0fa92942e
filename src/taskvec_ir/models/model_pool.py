"""The models a process has loaded, kept for its next job.

Hydra's basic launcher runs every trial of a sweep in one process, and a ``launcher=local`` worker runs
several: a trial that finds ΘT and τ already loaded re-reads no checkpoint and pays only its forward
passes. The pool keeps one scorer per role (the latest asked for, so a process that moves on to another
model does not keep the old one) and one in-place merge on ΘT.

The restore rule: a merge changes ΘT's weights in place, so before ΘT is handed to a merge of other task
vectors, the previous merge sets it back to ΘT exactly; and a merge is dropped with the ΘT it was made on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.sources import IR

if TYPE_CHECKING:
    from taskvec_ir.models.merging import TaskArithmetic
    from taskvec_ir.models.scoring import Scorer


class ModelPool:
    def __init__(self):
        self.scorers: dict[str, tuple[str, Scorer]] = {}  # role -> (identity, scorer)
        self._merge: tuple[str, TaskArithmetic] | None = None

    def scorer(self, role: str, identity: str, load: Callable[[], Scorer]) -> Scorer:
        """The scorer of ``role`` whose checkpoint and settings ``identity`` names, loaded once."""
        held = self.scorers.get(role)
        if held is None or held[0] != identity:
            if role == IR:
                self._merge = None  # it was made on the ΘT being replaced
            self.scorers.pop(role, None)  # freed before the next one loads
            self.scorers[role] = (identity, load())
        return self.scorers[role][1]

    def merge(self, identity: str, build: Callable[[], TaskArithmetic]) -> TaskArithmetic:
        """The in-place merge on the pool's ΘT whose task vectors ``identity`` names, built once."""
        if self._merge is not None and self._merge[0] != identity:
            self._merge[1].set(MergeSetting())  # hand ΘT back unmerged before other vectors take it
            self._merge = None
        if self._merge is None:
            self._merge = (identity, build())
        return self._merge[1]


POOL = ModelPool()  # the process's pool; tests and benchmarks may pass their own
