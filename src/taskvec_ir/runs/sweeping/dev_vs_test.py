"""A sweep's choice scored on the split it was tuned on beside the same setting on test, so that a search that fits
its tuning split shows as a drop; and another sweep's, read from its dir (``sweep.compare_with``): the layer-group
genome beside the single α (docs/sweeps.md, "Layer-group genome")."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from omegaconf import OmegaConf

from taskvec_ir.config.composed import Config
from taskvec_ir.config.systems import TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.reporting.rendering import Entry, Table


@dataclass(frozen=True)
class DevVsTest:
    """A sweep's best trial: its objective on the tuning split and the same setting's on the test split."""

    sweep: str  # the sweep's name (sweep=...)
    trials: int  # complete trials the choice was made from
    tuned: float
    test: float


def compared_sweep(folder: str, cfg: Config) -> DevVsTest:
    """The choice of the sweep in ``folder`` (its ``optimization_results.yaml`` and finished ``final/``), refused
    unless it ran the model, collection, objective and splits of ``cfg``'s sweep."""
    folder = Path(folder).expanduser()
    results, config, metrics = (
        folder / "optimization_results.yaml",
        folder / "final" / ".hydra" / "config.yaml",
        folder / "final" / "metrics.json",
    )
    for path in (results, config, metrics):
        if not path.is_file():
            raise UserError(f"sweep.compare_with: {path} is missing: give the dir of a sweep evaluated on test")
    other = OmegaConf.load(config)
    mine = {
        "model.name": cfg.model.name,
        "dataset.name": cfg.dataset.name,
        "objective": cfg.objective,
        "sweep.tune_split": cfg.sweep.tune_split,
        "split": cfg.dataset.test_split,
    }
    theirs = {key: OmegaConf.select(other, key, throw_on_resolution_failure=False) for key in mine}
    if theirs != mine:
        differ = ", ".join(f"{key}={theirs[key]} (here {value})" for key, value in mine.items() if theirs[key] != value)
        raise UserError(f"sweep.compare_with: {folder} ran {differ}: compare sweeps of one model, collection and split")
    best = OmegaConf.load(results)
    test = json.loads(metrics.read_text())[cfg.dataset.test_split][TASK_ARITHMETIC][cfg.objective]
    return DevVsTest(str(other.sweep.name), int(best.n_complete), float(best.best_value), test)


def dev_vs_test_table(rows: list[DevVsTest], objective: str, tuned_on: str, tested_on: str) -> Table:
    """One row per sweep: its objective on the tuning split, on test, and the difference."""
    return Table(
        ["sweep", "trials", f"{objective} {tuned_on}", f"{objective} {tested_on}", f"{tested_on} − {tuned_on}"],
        [[row.sweep, str(row.trials), Entry(row.tuned), Entry(row.test), Entry(row.test - row.tuned)] for row in rows],
        labels=2,
    )
