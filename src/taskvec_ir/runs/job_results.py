"""A job's results as a table reads them from the job's folder: whether it is done, its metrics.json and per-query
values, a sweep's best trial, the selection bootstrap, and the job's own account of why it failed.
"""

from __future__ import annotations

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


def bootstrap(folder: Path) -> dict | None:
    """A job's selection bootstrap (selection_bootstrap.json), or None where it ran none."""
    path = folder / "selection_bootstrap.json"
    return json.loads(path.read_text()) if path.is_file() else None


def failure(folder: Path) -> str | None:
    """Why a job failed, as it recorded it (its error.txt), or None where it recorded nothing."""
    recorded = folder / FAILURE_FILE
    return recorded.read_text().strip() if recorded.is_file() else None
