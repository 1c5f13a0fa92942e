"""The ``table`` key (``task=table``, ``conf/experiment/*table*``): a grid of cells, datasets × models × merges,
each tuned on dev (or by cross-validation) and by every label-free selection, compiled into one table
(``taskvec_ir.runs.table``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taskvec_ir.config.checks import choice, positive
from taskvec_ir.config.selection import SelectionMethod
from taskvec_ir.errors import UserError
from taskvec_ir.storage.outputs import refuse_password

PARETO_SELECTION = "pareto"  # a cell's Pareto row (table.pareto), beside its dev row


@dataclass
class ParetoRowConfig:
    """``table.pareto``: a Pareto row beside each dev row (docs/tables.md). The cell's α grid is searched as
    ``sweep=pareto`` does, with a grid, and the setting of best dev score whose retention loss on the general
    collection stays within ``sweep.retention.bound`` is evaluated on test."""

    retention: str | None = None  # the general collection, a conf/dataset/ entry (null: no Pareto rows)
    # more settings of the cells' Pareto step, e.g. [sweep.retention.bound=0.02, sweep.retention.split=...]
    overrides: list[str] = field(default_factory=list)

    def step_overrides(self) -> tuple[str, ...]:
        """What composes a cell's Pareto sweep, on top of the cell's overrides."""
        return ("sweep=pareto", f"dataset@sweep.retention.dataset={self.retention}", *self.overrides)


@dataclass
class TableConfig:
    """The grid. Each entry of ``datasets``, ``models``, ``merges`` and ``general_domain`` is a label and the
    overrides of its cell (``[]``: ``dataset=<label>``, ...); ``null`` leaves an entry of the experiment out."""

    name: str | None = None  # the prefix of its studies, and of its folder
    dir: str = "tables/${table.name}"  # the cells and the compiled table (a rerun resumes what it finds there)
    datasets: dict[str, list[str] | None] = field(default_factory=dict)
    models: dict[str, list[str] | None] = field(default_factory=dict)
    merges: dict[str, list[str] | None] = field(default_factory=lambda: {"task_arithmetic": []})
    selections: list[SelectionMethod] = field(
        default_factory=lambda: [SelectionMethod.pseudo_queries, SelectionMethod.stability, SelectionMethod.nqc]
    )
    storage: str | None = None  # every cell's Optuna study (null: sqlite in the table's folder)
    cells_at_once: int = 1  # cells run side by side (each through hydra.launcher)
    # label -> overrides of a general-domain collection ([]: dataset=<label>) on whose test split every cell's
    # merged model is evaluated too, at each α/λ its selections chose (runs.table.GeneralDomain)
    general_domain: dict[str, list[str] | None] = field(default_factory=dict)
    # refuse to run a cell whose search space (selection.alphas, λ's grid) was set after test results of the same cell
    # under another had been seen (false: its rows are marked; docs/sweeps.md)
    strict_test_guard: bool = False
    pareto: ParetoRowConfig = field(default_factory=ParetoRowConfig)

    def __post_init__(self):
        self.selections = [choice(SelectionMethod, s, "table.selections") for s in self.selections]

    def entries(self, key: str) -> dict[str, list[str]]:
        """The entries of ``datasets``, ``models``, ``merges`` or ``general_domain`` that are in the grid (not left
        out by null)."""
        return {label: overrides for label, overrides in getattr(self, key).items() if overrides is not None}

    def check(self) -> None:
        """What ``task=table`` needs (other tasks ignore the table)."""
        if not self.name:
            raise UserError("table.name: name the table (its folder is tables/<name>), e.g. experiment=table_demo")
        for key in ("datasets", "models", "merges"):
            if not self.entries(key):
                raise UserError(
                    f"table.{key}: name at least one (label: [overrides], e.g. '+table.{key}.mine=[]'; "
                    "null leaves an entry out)"
                )
        # A cell adds dev (or cross_validation, where it has no dev split) itself.
        label_free = [s for s in SelectionMethod if s != SelectionMethod.cross_validation]
        for selection in self.selections:
            if selection not in label_free:
                raise UserError(f"table.selections: '{selection}' is not one of {', '.join(label_free)}")
        positive(self.cells_at_once, "table.cells_at_once")
        refuse_password(self.storage, "table.storage")
