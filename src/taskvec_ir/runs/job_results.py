"""A job's results as a table reads them from the job's folder: whether it is done, its metrics.json and per-query
values, a sweep's best trial, the selection bootstrap, and the job's own account of why it failed.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from omegaconf import OmegaConf

from taskvec_ir.reporting.significance import PerQuery
from taskvec_ir.storage.outputs import FAILURE_FILE

DONE = "metrics.json"  # a job writes it last: a folder that holds it is a done job's


def done(folder: Path) -> bool:
    return (folder / DONE).is_file()


def metrics(folder: Path) -> dict:
    """A done job's metrics.json: its split's means, each system's λ, its selection's choice, warnings, analyses."""
    return json.loads((folder / DONE).read_text())


def per_query(folder: Path) -> PerQuery:
    """A done job's per-query values (system -> measure -> query id -> value) on the one split it evaluated."""
    return next(iter(json.loads((folder / "per_query.json").read_text()).values()))


def sweep_choice(sweep_dir: Path) -> tuple[float, float | None]:
    """α and λ of a sweep's best trial (its optimization_results.yaml)."""
    results = OmegaConf.to_container(OmegaConf.load(sweep_dir / "optimization_results.yaml"))
    return results["best_params"]["alpha.value"], results["best_lam"]


def pareto_trials(sweep_dir: Path) -> list[dict] | None:
    """A Pareto sweep's completed trials (its pareto_front.csv: α, λ, the two values, front, within the bound,
    chosen), or None where it wrote none."""
    path = sweep_dir / "pareto_front.csv"
    if not path.is_file():
        return None
    with open(path, newline="") as lines:
        return [{key: _csv_value(value) for key, value in row.items()} for row in csv.DictReader(lines)]


def _csv_value(text: str):
    """A value of a csv written by ``csv.DictWriter``: None, a bool, an int, a float, else the text."""
    if text in ("", "True", "False"):
        return {"": None, "True": True, "False": False}[text]
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def bootstrap(folder: Path) -> dict | None:
    """A job's selection bootstrap (selection_bootstrap.json), or None where it ran none."""
    path = folder / "selection_bootstrap.json"
    return json.loads(path.read_text()) if path.is_file() else None


def failure(folder: Path) -> str | None:
    """Why a job failed, as it recorded it (its error.txt), or None where it recorded nothing."""
    recorded = folder / FAILURE_FILE
    return recorded.read_text().strip() if recorded.is_file() else None
