"""A grid of cells, datasets × models × merges, in one command, compiled into one table (``task=table``).

Each cell runs through the ``taskvec-ir`` command itself, as a user would run it, with the command's own
overrides plus the cell's (``table.datasets``, ``table.models``, ``table.merges``):

1. where the dataset has a dev split apart from its test split: the paper's grid sweep on dev
   (``sweep=paper_grid``, α over ``selection.alphas``, λ from ``lam.grid`` in each trial) as its own Optuna
   study ``<table.name>/<cell>`` in ``table.storage``, trials through ``hydra.launcher``; its final evaluation
   on test is the cell's ``dev`` row;
2. a multirun of one job per selection (``table.selections``, and ``cross_validation`` where there is no dev
   split, ``taskvec_ir.pipeline.selection``), through the same launcher (one SLURM array per cell).

Several cells run side by side (``table.cells_at_once``). A step is done once its ``metrics.json`` exists: a
rerun skips it, and a sweep cut short resumes its study, so adding a dataset or a model to the table runs only
the new cells. The table is then compiled from the cells' per-query results into ``table.md``, ``table.tex``
and ``table.csv`` in the table's folder, and one W&B run holds it. A selection that failed does not stop the
others (each is its own job of the multirun): it is a ``failed`` row, with why (its job's ``error.txt``, or
its step's log), and the command then exits non-zero; a rerun runs only what is missing.

Where ``table.general_domain`` names a general-domain collection, every cell's merged model is also evaluated on
its test split, at each α and λ the cell's selections chose (``GeneralDomain``: a job per setting, after the
cells, through the same launcher and resumed the same way), and the table gains a section of Δ against ΘT there.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from omegaconf import OmegaConf

from taskvec_ir.config.composed import PSEUDO_QUERIES_NEED_BM25, PSEUDO_QUERIES_NEED_CANDIDATES, Config
from taskvec_ir.config.model import SUPERVISED_LABEL, SUPERVISED_TAG
from taskvec_ir.config.systems import ALPHA_ONE, BM25, IR_MODEL, PAPER_ORDER, TASK_ARITHMETIC
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import report, tables, tracking
from taskvec_ir.reporting.tables import BASELINES, GENERAL_BASELINES, MARKED
from taskvec_ir.runs.compose import typed_config
from taskvec_ir.storage.outputs import FAILURE_FILE, atomic_path, write_json

log = logging.getLogger("taskvec_ir")
SHOWN_MEASURES = ("ndcg@10", "precision@10")  # the paper's; every configured measure is in table.csv
# Settings of the command that are the table's own, or that each step sets itself.
_DRIVER_KEYS = ("table.", "+table.", "task=", "hydra.run.", "hydra.sweep.", "hydra.mode", "hydra.sweeper.storage")


@dataclass(frozen=True)
class Cell:
    """One (dataset, model, merge) of the grid: its labels, overrides and typed config."""

    dataset: str
    model: str
    merge: str
    overrides: tuple[str, ...]
    config: Config

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.model}/{self.merge}"

    @property
    def has_dev(self) -> bool:
        """A dev split apart from the test split (MIRACL's test split is its dev split: it has none)."""
        dataset = self.config.dataset
        return "dev" in dataset.splits and dataset.test_split != "dev"

    def selections(self, table_selections: list[str]) -> list[str]:
        return (["dev"] if self.has_dev else ["cross_validation"]) + list(table_selections)


def cells(cfg: Config, compose) -> list[Cell]:
    """Every cell of ``cfg.table``, each config composed and checked (``compose(overrides)``) before anything
    runs: a wrong name or value fails here, naming the table entry."""
    table, found = cfg.table, []
    for dataset, model, merge, overrides in _grid_entries(table, "datasets"):
        where = f"table cell {dataset}/{model}/{merge}"
        config = _typed(compose, overrides, where)
        if "pseudo_queries" in table.selections and config.retriever.backend == "run_file":
            raise UserError(f"{where}: {PSEUDO_QUERIES_NEED_BM25}")
        if "pseudo_queries" in table.selections and config.retriever.dense:
            raise UserError(
                f"{where}: {PSEUDO_QUERIES_NEED_CANDIDATES} (for a dense table: table.selections=[stability,nqc])"
            )
        found.append(Cell(dataset, model, merge, overrides, config))
    supervised = sorted({cell.model for cell in found if cell.config.model.supervised})
    if supervised and len(supervised) < len({cell.model for cell in found}):
        raise UserError(
            f"table.models: {', '.join(supervised)} trained ΘD on relevance labels (a {SUPERVISED_LABEL}), and a "
            "table of zero-shot models must not hold it: leave it out (table.models.<label>=null) and tabulate it "
            "on its own (e.g. experiment=supervised_control_demo)"
        )
    return found


def supervised(cells: list[Cell]) -> bool:
    """Whether the table is a supervised control's (``cells`` refuses a table that mixes one with zero-shot models)."""
    return any(cell.config.model.supervised for cell in cells)


def _grid_entries(table, datasets_key: str, *extra: str):
    """(dataset label, model, merge, overrides) of every entry of ``table.<datasets_key>`` × models × merges."""
    for dataset, dataset_overrides in table.entries(datasets_key).items():
        for model, model_overrides in table.entries("models").items():
            for merge, merge_overrides in table.entries("merges").items():
                overrides = (
                    *_with_default("dataset", dataset, dataset_overrides),
                    *_with_default("model", model, model_overrides),
                    *_with_default("merge", merge, merge_overrides),
                    *extra,
                )
                yield dataset, model, merge, overrides


def _typed(compose, overrides: tuple[str, ...], where: str) -> Config:
    """The typed config of a table entry's ``overrides``; any error names the entry (``where``)."""
    try:
        return typed_config(compose([*overrides, "task=evaluate"]))
    except Exception as error:  # noqa: BLE001 - Hydra's and the schema's errors alike
        raise UserError(f"{where} ({' '.join(overrides)}): {error}") from None


def _with_default(group: str, label: str, overrides: list[str]) -> list[str]:
    """An entry's overrides, with ``<group>=<label>`` first unless they choose the group's config themselves."""
    chosen = any(o.split("=", 1)[0].lstrip("+~") == group for o in overrides)
    return list(overrides) if chosen else [f"{group}={label}", *overrides]


def command_overrides(task: list[str], hydra: list[str]) -> list[str]:
    """The command's overrides every step of every cell inherits (not the table's own keys)."""
    return [o for o in [*task, *hydra] if not o.lstrip("+~").startswith(_DRIVER_KEYS)]


@dataclass(frozen=True)
class GeneralDomain:
    """A general-domain collection (``table.general_domain.<label>``) for one model × merge of the grid: the merged
    model of every cell with that model and merge, on another corpus, is evaluated on its test split at each α and
    λ the cell's selections chose. A (α, λ) is one job, shared by every cell and selection that chose it."""

    label: str
    model: str
    merge: str
    overrides: tuple[str, ...]
    config: Config

    @property
    def name(self) -> str:
        return f"general/{self.label}/{self.model}/{self.merge}"

    def covers(self, cell: Cell) -> bool:
        """Whether ``cell``'s merged model is evaluated here: same model and merge, another corpus (a cell on the
        general collection itself, or a carve-out of it, is no test of another domain)."""
        same_corpus = cell.config.dataset.docs == self.config.dataset.docs
        return (cell.model, cell.merge) == (self.model, self.merge) and not same_corpus


def general_domains(cfg: Config, compose) -> list[GeneralDomain]:
    """Every general-domain collection × model × merge of ``cfg.table``, each config composed and checked before
    anything runs: a misspelt collection fails here, naming ``table.general_domain.<label>``."""
    systems = f"systems=[{','.join(PAPER_ORDER)}]"  # a general-domain job evaluates the table's systems
    return [
        GeneralDomain(label, model, merge, overrides, _typed(compose, overrides, f"table.general_domain.{label}"))
        for label, model, merge, overrides in _grid_entries(cfg.table, "general_domain", systems)
    ]


class Grid:
    """The table's folder: ``cells/<dataset>/<model>/<merge>/{dev,selection/<method>}``,
    ``general/<label>/<model>/<merge>/alpha_<α>-lam_<λ>`` (``table.general_domain``) and ``settings.json``."""

    def __init__(
        self,
        cfg: Config,
        folder: Path,
        shared: list[str],
        cells: list[Cell],
        config_dirs: list[str],
        general: list[GeneralDomain] = (),
    ):
        self.cfg, self.folder, self.shared, self.cells, self.general = cfg, folder, shared, cells, list(general)
        self.config_dirs = config_dirs  # the command's --config-dir, where a user's table and datasets live
        self.storage = cfg.table.storage or f"sqlite:///{(folder / 'optuna.db').resolve()}"

    def cell_dir(self, cell: Cell) -> Path:
        return self.folder / "cells" / cell.dataset / cell.model / cell.merge

    def check_settings(self) -> None:
        """A cell's results stand for the config it ran with: a rerun whose cell would run with another config
        (another top_k, α grid, checkpoint, ...) is refused, naming the keys, rather than mixing the two. What
        does not change results may change: the launcher, the cache's and W&B's settings, the table's cells."""
        path = self.folder / "settings.json"
        recorded = json.loads(path.read_text()) if path.is_file() else {}
        current = {item.name: _results_config(item.config) for item in [*self.cells, *self.general]}
        for name, config in current.items():
            if name in recorded and recorded[name] != config:
                keys = sorted(k for k in _flat(config).keys() | _flat(recorded[name]).keys()
                              if _flat(config).get(k) != _flat(recorded[name]).get(k))  # fmt: skip
                what = "general-domain evaluation" if name.startswith("general/") else "cell"
                raise UserError(
                    f"{self.folder}: {what} {name} was run with other settings ({', '.join(keys[:6])} differ): give "
                    f"another table.name, or delete the {what}'s folder to run it again"
                )
        write_json({**recorded, **current}, path)

    def missing(self, cell: Cell) -> list[str]:
        """The cell's selections not yet done (their ``metrics.json`` not written)."""
        selections = cell.selections(self.cfg.table.selections)
        return [s for s in selections if not (self.result_dir(cell, s) / "metrics.json").is_file()]

    def result_dir(self, cell: Cell, selection: str) -> Path:
        if selection == "dev":
            return self.cell_dir(cell) / "dev" / "final"
        return self.cell_dir(cell) / "selection" / selection

    def steps(self, cell: Cell) -> list[tuple[str, list[str]]]:
        """(name, overrides) of each step the cell still needs: its dev sweep, then its other selections."""
        missing, cell_dir, table = self.missing(cell), self.cell_dir(cell), self.cfg.table
        # table.name tags every job of the cell (table:<name>): one W&B filter shows the whole table
        base = [*self.shared, *cell.overrides, "task=evaluate", f"table.name='{table.name}'"]
        alphas = ",".join(repr(float(a)) for a in self.cfg.selection.alphas)
        steps = []
        if "dev" in missing:
            steps.append(
                (
                    "dev",
                    [
                        "-m",
                        *base,
                        "sweep=paper_grid",
                        f"alpha.value=choice({alphas})",
                        f"hydra.sweeper.n_trials={len(self.cfg.selection.alphas)}",
                        f"hydra.sweep.dir={cell_dir / 'dev'}",
                        f"hydra.sweeper.storage={self.storage}",
                        f"hydra.sweeper.study_name={table.name}/{cell.name}",
                    ],
                )
            )
        others = [s for s in missing if s != "dev"]
        if others:
            steps.append(
                (
                    "selection",
                    [
                        "-m",
                        *base,
                        f"selection={','.join(others)}",
                        f"hydra.sweep.dir={cell_dir / 'selection'}",
                        "hydra.sweep.subdir=${selection.method}",
                        f"wandb.group=table/{table.name}",
                        "wandb.job_type=selection",
                        f"wandb.name='{table.name}/{cell.name}/${{selection.method}}'",
                    ],
                )
            )
        return steps

    def run_cell(self, cell: Cell) -> list[str]:
        """Run the cell's missing steps, each as a ``taskvec-ir`` command logged to ``<step>.log`` in its folder;
        what failed (one line per selection not done)."""
        for step, overrides in self.steps(cell):
            log_path = self.cell_dir(cell) / f"{step}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            log.info("Cell %s: %s (log: %s)", cell.name, step, log_path)
            if self.command(overrides, log_path) != 0:
                log.warning("Cell %s: %s failed; see %s", cell.name, step, log_path)
        failures = [f"{cell.name}: {s} failed ({self.failure(cell, s)})" for s in self.missing(cell)]
        if not failures:
            log.info("Cell %s: done", cell.name)
        return failures

    def command(self, overrides: list[str], log_path: Path) -> int:
        """Run ``taskvec-ir`` with the command's config dirs and ``overrides``, its output into ``log_path``."""
        with open(log_path, "w") as out:
            return subprocess.run(
                [sys.executable, "-m", "taskvec_ir", *self.config_dirs, *overrides],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            ).returncode

    def failure(self, cell: Cell, selection: str) -> str:
        """Why a selection of the cell is not done: its job's own error, else its step's log's error line."""
        recorded = self.result_dir(cell, selection) / FAILURE_FILE
        if recorded.is_file():
            return recorded.read_text().strip()
        log_path = self.cell_dir(cell) / ("dev.log" if selection == "dev" else "selection.log")
        return f"{_error_line(log_path)}; see {log_path}" if log_path.is_file() else "not run"

    def run(self) -> list[str]:
        """Every cell with missing steps, ``table.cells_at_once`` at a time; the failures."""
        todo = [cell for cell in self.cells if self.missing(cell)]
        done = len(self.cells) - len(todo)
        log.info("Table %s: %d cells, %d done, %d to run", self.cfg.table.name, len(self.cells), done, len(todo))
        with ThreadPoolExecutor(self.cfg.table.cells_at_once) as pool:
            return [failure for failures in pool.map(self.run_cell, todo) for failure in failures]

    # -- the general domain (table.general_domain): each chosen (α, λ) evaluated on another collection ---------
    def chosen_settings(self, cell: Cell, selection: str) -> dict[tuple[float, float], int]:
        """The (α, λ) a done selection of ``cell`` chose for task arithmetic, with how many of its folds chose each
        (one setting, one fold, but under cross-validation, whose folds may differ)."""
        if selection == "dev":
            alpha, lam, _ = self.choice(cell, selection)
            return {(float(alpha), float(lam)): 1}
        folds = json.loads((self.result_dir(cell, selection) / "metrics.json").read_text())["selection"]["folds"]
        return dict(Counter((float(fold["alpha"]), float(fold["lam"])) for fold in folds))

    def general_choices(self, general: GeneralDomain) -> Iterator[tuple[Cell, str, dict[tuple[float, float], int]]]:
        """(cell, selection, its settings) of every done selection of the cells ``general`` covers."""
        for cell in self.cells:
            if general.covers(cell):
                missing = self.missing(cell)
                for selection in cell.selections(self.cfg.table.selections):
                    if selection not in missing:
                        yield cell, selection, self.chosen_settings(cell, selection)

    def general_dir(self, general: GeneralDomain, setting: tuple[float, float]) -> Path:
        alpha, lam = setting  # as the job's hydra.sweep.subdir writes them (str of a float)
        return self.folder / general.name / f"alpha_{alpha}-lam_{lam}"

    def general_missing(self, general: GeneralDomain) -> list[tuple[float, float]]:
        """The settings chosen for ``general``'s cells not yet evaluated there (no ``metrics.json``), in order."""
        chosen = dict.fromkeys(s for _, _, settings in self.general_choices(general) for s in settings)
        return [s for s in chosen if not (self.general_dir(general, s) / "metrics.json").is_file()]

    def general_steps(self, general: GeneralDomain) -> list[tuple[str, list[str]]]:
        """(name, overrides) of each multirun ``general`` still needs: one per λ, over the α values chosen with it
        (a job per (α, λ), through the launcher, as the cells' selections)."""
        by_lam: dict[float, list[float]] = {}
        for alpha, lam in self.general_missing(general):
            by_lam.setdefault(lam, []).append(alpha)
        name, setting = self.cfg.table.name, "alpha_${alpha.value}-lam_${lam.value}"
        base = [*self.shared, *general.overrides, "task=evaluate", f"table.name='{name}'"]
        return [
            (
                f"lam_{lam}",
                [
                    "-m",
                    *base,
                    f"alpha.value={','.join(repr(alpha) for alpha in alphas)}",
                    f"lam.value={lam!r}",
                    f"hydra.sweep.dir={self.folder / general.name}",
                    f"hydra.sweep.subdir={setting}",
                    f"wandb.group=table/{name}",
                    "wandb.job_type=general_domain",
                    f"wandb.name='{name}/{general.name}/{setting}'",
                ],
            )
            for lam, alphas in by_lam.items()
        ]

    def run_general(self) -> list[str]:
        """Every general domain's missing settings (after the cells, whose choices they evaluate),
        ``table.cells_at_once`` collections × models at a time; the failures."""
        with ThreadPoolExecutor(self.cfg.table.cells_at_once) as pool:
            return [failure for failures in pool.map(self.run_general_domain, self.general) for failure in failures]

    def run_general_domain(self, general: GeneralDomain) -> list[str]:
        folder = self.folder / general.name
        for step, overrides in self.general_steps(general):
            folder.mkdir(parents=True, exist_ok=True)
            log.info("General domain %s: %s (log: %s)", general.name, step, folder / f"{step}.log")
            if self.command(overrides, folder / f"{step}.log") != 0:
                log.warning("General domain %s: %s failed; see %s", general.name, step, folder / f"{step}.log")
        return [
            f"{general.name}: α {alpha:g} λ {lam:g} failed ({self.general_failure(general, (alpha, lam))})"
            for alpha, lam in self.general_missing(general)
        ]

    def general_failure(self, general: GeneralDomain, setting: tuple[float, float]) -> str:
        """Why a general-domain job is not done: its own error, else its step's log's error line."""
        recorded = self.general_dir(general, setting) / FAILURE_FILE
        if recorded.is_file():
            return recorded.read_text().strip()
        log_path = self.folder / general.name / f"lam_{setting[1]}.log"
        return f"{_error_line(log_path)}; see {log_path}" if log_path.is_file() else "not run"

    def general_rows(self) -> list[dict]:
        """As ``rows``, one row per (general domain, cell, selection, setting it chose, system), with the collection's
        label (``general_domain``) and, where cross-validation's folds chose different settings, how many chose the
        row's (``general_folds``): BM25, ΘT, α=1 and TA at the setting's α on the collection's test queries, every
        fused system at the setting's λ (nothing is tuned on the general domain), α=1 and TA tested against ΘT."""
        measures, shown, rows = list(self.cfg.measures), self.shown_measures(), []
        p_columns = [f"p_vs_{b}[{m}]" for m in shown for b in MARKED]
        raw: dict[str, dict[tuple[int, str, str], float]] = {}  # label -> (row, baseline, measure) -> p
        for general in self.general:
            for cell, selection, settings in self.general_choices(general):
                folds = self.choice(cell, selection)[2]
                for (alpha, lam), count in settings.items():
                    labels = {"general_domain": general.label, "dataset": cell.dataset, "model": cell.model,
                              "merge": cell.merge, "selection": selection}  # fmt: skip
                    alphas = {BM25: None, IR_MODEL: 0.0, ALPHA_ONE: 1.0, TASK_ARITHMETIC: alpha}
                    shared = {"folds": folds, "general_folds": f"{count} of {sum(settings.values())}"
                              if len(settings) > 1 else None, "warnings": None}  # fmt: skip
                    folder = self.general_dir(general, (alpha, lam))
                    if not (folder / "metrics.json").is_file():
                        why = self.general_failure(general, (alpha, lam))
                        empty = {"queries": None, **dict.fromkeys([*measures, *p_columns]), **shared, "failed": why}
                        rows += [{**labels, "system": s, "alpha": alphas[s], "lam": None if s == BM25 else lam,
                                  **empty} for s in PAPER_ORDER]  # fmt: skip
                        continue
                    per_query = next(iter(json.loads((folder / "per_query.json").read_text()).values()))
                    metrics = json.loads((folder / "metrics.json").read_text())
                    warnings = _warnings_text(metrics)
                    for system in PAPER_ORDER:
                        baselines = GENERAL_BASELINES.get(system, ())
                        tests = report.significance(per_query, system, baselines, shown, self.cfg.significance)
                        family = raw.setdefault(general.label, {})
                        family.update({(len(rows), b, m): tests[b][m] for b in baselines for m in shown})
                        rows.append(
                            {
                                **labels,
                                "system": system,
                                "alpha": alphas[system],
                                "lam": metrics["lam"][system],
                                "queries": len(per_query[system][measures[0]]),
                                **{m: _mean(per_query[system][m]) for m in measures},
                                **dict.fromkeys(p_columns),
                                **shared,
                                "warnings": warnings or None,
                                "failed": None,
                            }
                        )
        for family in raw.values():  # each collection's section is corrected on its own
            for (row, baseline, measure), p in report.adjust_table(family, self.cfg.significance.correction).items():
                rows[row][f"p_vs_{baseline}[{measure}]"] = p
        return rows

    # -- the compiled table ----------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """One row per (cell, selection, system): the chosen α, the system's own λ (None where cross-validation's
        folds chose differently: ``folds`` holds each fold's), the number of test queries, every measure's mean
        over them, the p-values against the system's baselines (``tables.BASELINES``, as ``significance`` tests and
        corrects them), and the job's warnings (queries that scored 0 for want of input); a selection not done:
        rows that say why (``failed``), with no values."""
        measures, shown, rows = list(self.cfg.measures), self.shown_measures(), []
        p_columns = [f"p_vs_{b}[{m}]" for m in shown for b in MARKED]
        raw: dict[tuple[int, str, str], float] = {}  # (row, baseline, measure) -> unadjusted p-value
        for cell in self.cells:
            missing = self.missing(cell)
            for selection in cell.selections(self.cfg.table.selections):
                labels = {"dataset": cell.dataset, "model": cell.model, "merge": cell.merge, "selection": selection}
                if selection in missing:
                    failed = {"alpha": None, "lam": None, "queries": None, **dict.fromkeys([*measures, *p_columns])}
                    failed.update(folds=None, warnings=None, failed=self.failure(cell, selection))
                    rows += [{**labels, "system": system, **failed} for system in PAPER_ORDER]
                    continue
                folder = self.result_dir(cell, selection)
                per_query = next(iter(json.loads((folder / "per_query.json").read_text()).values()))
                metrics = json.loads((folder / "metrics.json").read_text())
                alpha, lam, folds = self.choice(cell, selection)
                warnings = _warnings_text(metrics)
                for system in PAPER_ORDER:
                    baselines = BASELINES.get(system, ())
                    tests = report.significance(per_query, system, baselines, shown, self.cfg.significance)
                    raw.update({(len(rows), b, m): tests[b][m] for b in baselines for m in shown})
                    rows.append(
                        {
                            **labels,
                            "system": system,
                            "alpha": {BM25: None, IR_MODEL: 0.0, ALPHA_ONE: 1.0}.get(system, alpha),
                            "lam": metrics["lam"].get(system) if "lam" in metrics else None if system == BM25 else lam,
                            "queries": len(per_query[system][measures[0]]),
                            **{m: _mean(per_query[system][m]) for m in measures},
                            **dict.fromkeys(p_columns),
                            "folds": folds,
                            "warnings": warnings or None,
                            "failed": None,
                            **(tables.analysis_columns(metrics.get("analyses")) if system == TASK_ARITHMETIC else {}),
                        }
                    )
        for (row, baseline, measure), p in report.adjust_table(raw, self.cfg.significance.correction).items():
            rows[row][f"p_vs_{baseline}[{measure}]"] = p
        columns = dict.fromkeys(key for row in rows for key in row)  # the analyses' columns: only where they ran
        return [{key: row.get(key) for key in columns} for row in rows]

    def add_bootstrap(self, rows: list[dict]) -> None:
        """Each task arithmetic row's bootstrap (``selection_bootstrap.json`` of its selection's job, as
        ``tables.bootstrap_columns``), the other rows' columns empty."""
        found = {}
        for cell in self.cells:
            for selection in cell.selections(self.cfg.table.selections):
                path = self.result_dir(cell, selection) / "selection_bootstrap.json"
                if path.is_file():
                    found[cell.dataset, cell.model, cell.merge, selection] = json.loads(path.read_text())
        for row in rows:
            key = (row["dataset"], row["model"], row["merge"], row["selection"])
            row.update(tables.bootstrap_columns(found.get(key) if row["system"] == TASK_ARITHMETIC else None))

    def shown_measures(self) -> list[str]:
        """The measures the table shows: the objective, then the paper's others among the configured measures."""
        objective = self.cfg.objective
        return [objective, *(m for m in SHOWN_MEASURES if m in self.cfg.measures and m != objective)]

    def choice(self, cell: Cell, selection: str) -> tuple[float | None, float | None, str | None]:
        """α and λ (None where folds chose differently) and, for cross-validation, each fold's α/λ."""
        if selection == "dev":
            results = OmegaConf.to_container(OmegaConf.load(self.cell_dir(cell) / "dev" / "optimization_results.yaml"))
            return results["best_params"]["alpha.value"], results["best_lam"], None
        chosen = json.loads((self.result_dir(cell, selection) / "metrics.json").read_text())["selection"]
        folds = (
            " ".join(f"{f['alpha']:g}" + ("" if f["lam"] is None else f"/{f['lam']:g}") for f in chosen["folds"])
            if len(chosen["folds"]) > 1
            else None
        )
        return chosen["alpha"], chosen["lam"], folds


def general_sections(cfg: Config, general_rows: list[dict], measures: list[str]) -> dict[str, tables.Table]:
    """The compiled table's general-domain sections by title: one per collection and shown measure."""
    return {
        f"General domain ({label}): Δ against ΘT, {measure}": tables.general_domain_table(
            general_rows, label, measure, cfg.significance
        )
        for label in cfg.table.entries("general_domain")
        for measure in measures
        if any(r["general_domain"] == label for r in general_rows)
    }


def _results_config(config: Config) -> dict:
    """What of a cell's config its results depend on, as JSON values."""
    values = json.loads(json.dumps(asdict(config), default=str))
    for key in ("table", "cache", "wandb", "data", "task", "significance"):  # significance: compiled, not run
        values.pop(key)
    return values


def _flat(values: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, item in values.items():
        name = f"{prefix}{key}"
        flat.update(_flat(item, f"{name}.") if isinstance(item, dict) and item else {name: item})
    return flat


def _error_line(log_path: Path) -> str:
    """The line of a failed step's log that says why: its last error line, else its last line."""
    lines = [line.strip() for line in log_path.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if "HYDRA_FULL_ERROR" not in line] or ["(no output)"]
    errors = [line for line in lines if line.startswith("taskvec-ir:") or "Error" in line or "failed" in line]
    return (errors or lines)[-1][:300]


def _warnings_text(metrics: dict) -> str:
    """A job's warnings (queries that scored 0 for want of input) as one line."""
    return "; ".join(f"{kind}: {' '.join(ids)}" for kind, ids in metrics.get("warnings", {}).items())


def _columns_and_data(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Rows as a W&B table takes them."""
    columns = list(rows[0])
    return columns, [[r[c] for c in columns] for r in rows]


def _mean(values: dict[str, float]) -> float:
    return sum(values.values()) / len(values)


def bootstrap_section(grid: Grid, rows: list[dict]) -> tables.Table:
    """The rows' bootstrap columns (added to ``rows``), and the table of them."""
    grid.add_bootstrap(rows)
    settings = grid.cfg.selection.bootstrap
    return tables.bootstrap_table(rows, grid.cfg.objective, settings.confidence, settings.resamples)


def run_table(cfg: Config, out_dir: Path, sampler_seed: int | None = None) -> dict:
    """``task=table``: run the grid's missing cells, then compile and log the table into ``table.dir`` (see the
    module docstring); ``out_dir``, the command's own job dir, holds its log."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    shared = command_overrides(list(hydra.overrides.task), list(hydra.overrides.hydra))
    config_dirs = [
        f"--config-dir={source.path.removeprefix('file://')}"
        for source in hydra.runtime.config_sources
        if source.provider == "command-line" and source.schema == "file"
    ]
    found = cells(cfg, lambda extra: compose("config", overrides=[*shared, *extra]))
    general = general_domains(cfg, lambda extra: compose("config", overrides=[*shared, *extra]))
    grid = Grid(cfg, Path(cfg.table.dir), shared, found, config_dirs, general)
    grid.check_settings()
    failures = grid.run()
    general_failures = grid.run_general()
    rows = grid.rows()  # a failed selection's rows say so: the others are compiled all the same
    general_rows = grid.general_rows()
    measure = cfg.objective
    shown = {m: tables.cells_table(rows, m, cfg.significance, cfg.retriever.dense) for m in grid.shown_measures()}
    distance = tables.label_free_distance(rows, measure)
    general_shown = general_sections(cfg, general_rows, grid.shown_measures())
    control = f" — {SUPERVISED_LABEL}" if supervised(grid.cells) else ""
    if control:  # in the rendered tables too (LaTeX's headings are comments)
        shown = {
            m: replace(t, footnote=f"A {SUPERVISED_LABEL}: ΘD used relevance labels. {t.footnote}")
            for m, t in shown.items()
        }
    text = {
        "table.md": "\n".join(f"### {m}{control}\n\n{tables.markdown(table)}" for m, table in shown.items())
        + f"\n### Label-free α against the labelled choice{control}\n\n{tables.markdown(distance)}"
        + tables.analysis_sections(rows, measure)
        + "".join(f"\n### {title}{control}\n\n{tables.markdown(table)}" for title, table in general_shown.items()),
        "table.tex": "\n".join(f"% {m}{control}\n{tables.latex(table)}" for m, table in shown.items())
        + "".join(f"\n% {title}{control}\n{tables.latex(table)}" for title, table in general_shown.items()),
    }
    if cfg.selection.bootstrap.resamples:
        sure = bootstrap_section(grid, rows)
        text["table.md"] += f"\n### How sure is each selection\n\n{tables.markdown(sure)}"
        text["table.tex"] += f"\n% How sure is each selection\n{tables.latex(sure)}"
    text["table.csv"] = tables.csv_text([*rows, *general_rows])  # after the bootstrap's columns are added to rows
    for name, content in text.items():
        with atomic_path(grid.folder / name) as tmp:
            tmp.write_text(content)
    config = {"table": cfg.table.name, "cells": [c.name for c in grid.cells], "overrides": shared}
    # Beside its cells' selection runs, and found by the tag every job of the table carries.
    name = cfg.table.name
    tags = [f"table:{name}", *([SUPERVISED_TAG] if control else [])]
    settings = replace(cfg.wandb, group=f"table/{name}", name=name, tags=tags)
    with tracking.wandb_run(config, grid.folder, settings, {}, job_type="table") as run:
        logged = {"table": rows, **({"general_domain": general_rows} if general_rows else {})}
        tracking.log_report(run, {}, {key: _columns_and_data(found) for key, found in logged.items()})
    print(f"\n{text['table.md']}")
    print(f"Table: {grid.folder / 'table.md'} (and table.tex, table.csv)")
    if failures or general_failures:
        total = sum(len(cell.selections(cfg.table.selections)) for cell in grid.cells)
        general = f" and {len(general_failures)} general-domain evaluations" if general_failures else ""
        message = (
            f"{len(failures)} of {total} selections{general} failed (rows marked failed); rerun the same command:\n  "
        )
        failures += general_failures
        log.error("%s", message + "\n  ".join(failures))
        sys.exit(f"taskvec-ir: {message}" + "\n  ".join(failures))
    return {"cells": len(grid.cells)}
