"""``task=table``: a grid of cells, datasets × models × merges, run in one command and compiled into one table.

Every missing step runs first (``runs.table_folder``); then the done jobs' per-query values are compared
(``reporting.significance.compare``) into one row per job and system, written as table.md, table.tex and
table.csv and logged to W&B (``reporting.compiled_table``). What each step runs, and how a rerun resumes:
docs/tables.md.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from pathlib import Path

from omegaconf import OmegaConf

from taskvec_ir.config.composed import Config
from taskvec_ir.config.merge import LamConfig
from taskvec_ir.config.systems import ALPHA_ONE, BM25, IR_MODEL, PAPER_ORDER, TASK_ARITHMETIC
from taskvec_ir.config.table import PARETO_SELECTION
from taskvec_ir.pipeline.selection.tie_rule import TIE
from taskvec_ir.reporting import compiled_table
from taskvec_ir.reporting.analysis_tables import analysis_columns, bootstrap_columns
from taskvec_ir.reporting.results_tables import BASELINES, FAMILY_COLUMNS, GENERAL_BASELINES, MARKED, shown_measures
from taskvec_ir.reporting.significance import Compared, compare
from taskvec_ir.runs import job_results, test_guard
from taskvec_ir.runs.search_space import search_space
from taskvec_ir.runs.sweeping.launchers import check_scheduler
from taskvec_ir.runs.table_folder import SWEPT, TableFolder, alpha_choice
from taskvec_ir.runs.table_grid import Cell, cells, command_overrides, general_domains, supervised
from taskvec_ir.storage.outputs import atomic_path

log = logging.getLogger("taskvec_ir")


def rows(folder: TableFolder, tuned_after_test: Mapping[str, str] | None = None) -> list[dict]:
    """One row per (cell, selection, system): the chosen α, the system's own λ (None where cross-validation's
    folds chose differently: ``folds`` holds each fold's), the number of test queries, every measure's mean
    over them, the p-values against the system's baselines (``results_tables.BASELINES``, tested and corrected by
    ``compare``), the job's warnings (queries that scored 0 for want of input) and, where its search space was set
    after test results of its cell had been seen, why (``tuned_after_test``: by cell name, from ``guard_cells``; a
    dev row's also from its final evaluation); a selection not done: rows that say why (``failed``), with no
    values."""
    tuned_after_test = tuned_after_test or {}
    cfg = folder.cfg
    measures, shown = list(cfg.measures), shown_measures(cfg.objective, cfg.measures, cfg.retriever)
    jobs = []  # (cell, selection, done)
    for cell in folder.cells:
        missing = folder.missing(cell)
        jobs += [(cell, selection, selection not in missing) for selection in cell.selections(cfg.table.selections)]
    per_query = [job_results.per_query(folder.result_dir(cell, s)) for cell, s, done in jobs if done]
    cell_names = [cell.name for cell, _, done in jobs if done]  # Holm's families: each cell's tests
    compared = iter(compare(per_query, BASELINES, measures, cfg.significance, shown, cell_names))
    found = []
    for cell, selection, done in jobs:
        labels = {"dataset": cell.dataset, "model": cell.model, "merge": cell.merge, "selection": selection}
        if not done:
            empty = dict.fromkeys(PAPER_ORDER)
            notes = {"folds": None, "warnings": None, "tuned_after_test": None}
            found += _system_rows(labels, None, empty, empty, shown, measures, notes, folder.failure(cell, selection))
            continue
        metrics = job_results.metrics(folder.result_dir(cell, selection))
        alpha, lam, folds = folder.choice(cell, selection)
        alphas = {BM25: None, IR_MODEL: 0.0, ALPHA_ONE: 1.0, TASK_ARITHMETIC: alpha}
        lambdas = {s: metrics["lam"].get(s) if "lam" in metrics else None if s == BM25 else lam for s in PAPER_ORDER}
        guarded = metrics.get("test_guard", {})  # a sweep's final evaluation: its study's record
        study_mark = (
            f"its dev study's search space {guarded['search_space']} was set after test evaluation(s) of the cell "
            "under another: " + "; ".join(t["what"] for t in guarded["tests_seen"])
            if guarded.get("tuned_after_test")
            else None
        )
        notes = {
            "folds": folds,
            "warnings": _warnings_text(metrics) or None,
            "tuned_after_test": tuned_after_test.get(cell.name) or study_mark,
        }
        own = {**analysis_columns(metrics.get("analyses")), **retention_columns(folder, cell, selection, alpha, lam)}
        analyses = {TASK_ARITHMETIC: own}
        found += _system_rows(labels, next(compared), alphas, lambdas, shown, measures, notes, None, analyses)
    columns = dict.fromkeys(key for row in found for key in row)  # the analyses' columns: only where they ran
    return [{key: row.get(key) for key in columns} for row in found]


def retention_columns(folder: TableFolder, cell: Cell, selection: str, alpha, lam) -> dict:
    """Task arithmetic's retention on a dev or Pareto row of a cell with a Pareto row (``table.pareto``), as the
    cell's Pareto study measured it: its chosen trial's, and for the dev row its trial at the dev row's α and λ (the
    same grid: None where the study is not done). ``retention_on`` names the general collection and its split,
    ``retention_bound`` the bound. Nothing for other rows."""
    if cell.retention is None or selection not in SWEPT:
        return {}
    trials = job_results.pareto_trials(folder.cell_dir(cell) / PARETO_SELECTION) or []
    if selection == PARETO_SELECTION:
        found = [t for t in trials if t["chosen"]]
    else:
        found = [t for t in trials if alpha is not None and abs(t["alpha"] - alpha) <= TIE and t["lam"] == lam]
    retention = cell.retention
    return {
        "retention": found[0]["retention"] if found else None,
        "retention_on": f"{retention.dataset.name} {retention.split}",
        "retention_bound": retention.bound,
    }


def general_rows(folder: TableFolder) -> list[dict]:
    """As ``rows``, one row per (general domain, cell, selection, setting it chose, system), with the collection's
    label (``general_domain``) and, where cross-validation's folds chose different settings, how many chose the
    row's (``general_folds``): BM25, ΘT, α=1 and TA at the setting's α on the collection's test queries, every
    fused system at the setting's λ (nothing is tuned on the general domain), α=1 and TA tested against ΘT, each
    collection's tests compared (and corrected) on their own."""
    cfg = folder.cfg
    measures, shown = list(cfg.measures), shown_measures(cfg.objective, cfg.measures, cfg.retriever)
    jobs = []  # (general, cell, selection, the selection's folds, setting, "n of k" folds that chose it)
    for general in folder.general:
        for cell, selection, settings in folder.general_choices(general):
            folds = folder.choice(cell, selection)[2]
            for setting, count in settings.items():
                chose = f"{count} of {sum(settings.values())}" if len(settings) > 1 else None
                jobs.append((general, cell, selection, folds, setting, chose))
    done = [job_results.done(folder.general_dir(job[0], job[4])) for job in jobs]
    compared = {}
    for label in dict.fromkeys(job[0].label for job in jobs):
        evaluated = [job for job, ok in zip(jobs, done, strict=True) if ok and job[0].label == label]
        per_query = [job_results.per_query(folder.general_dir(job[0], job[4])) for job in evaluated]
        cell_names = [job[1].name for job in evaluated]  # Holm's families: each cell's tests on the collection
        compared[label] = iter(compare(per_query, GENERAL_BASELINES, measures, cfg.significance, shown, cell_names))
    found = []
    for (general, cell, selection, folds, (alpha, lam), chose), ok in zip(jobs, done, strict=True):
        labels = {"general_domain": general.label, "dataset": cell.dataset, "model": cell.model,
                  "merge": cell.merge, "selection": selection}  # fmt: skip
        alphas = {BM25: None, IR_MODEL: 0.0, ALPHA_ONE: 1.0, TASK_ARITHMETIC: alpha}
        lambdas = {s: None if s == BM25 else lam for s in PAPER_ORDER}
        notes = {"folds": folds, "general_folds": chose}
        if not ok:
            why = folder.failure(general, (alpha, lam))
            found += _system_rows(labels, None, alphas, lambdas, shown, measures, {**notes, "warnings": None}, why)
            continue
        warnings = _warnings_text(job_results.metrics(folder.general_dir(general, (alpha, lam))))
        notes["warnings"] = warnings or None
        found += _system_rows(labels, next(compared[general.label]), alphas, lambdas, shown, measures, notes, None)
    return found


def _system_rows(
    labels: dict,
    compared: Mapping[str, Compared] | None,
    alphas: Mapping[str, float | None],
    lambdas: Mapping[str, float | None],
    shown: list[str],
    measures: list[str],
    notes: dict,
    failed: str | None,
    own: Mapping[str, dict] | None = None,
) -> list[dict]:
    """One job's rows, a system each (``PAPER_ORDER``): ``labels``, the system's α and λ, its queries, means and
    p-values (against every baseline's mark, ``MARKED``, on each ``shown`` measure: None where not tested) and the
    family they were corrected in (its distinct ``tests``, ``permutations`` and whether it was ``markable``), then
    ``notes``, why the job ``failed`` (``compared`` None: no values) and the system's ``own`` columns."""
    found = []
    for system in PAPER_ORDER:
        row = {**labels, "system": system, "alpha": alphas[system], "lam": lambdas[system]}
        values = compared[system] if compared is not None else None
        row["queries"] = values.queries if values else None
        row.update({m: values.means[m] if values else None for m in measures})
        row.update({f"p_vs_{b}[{m}]": values.p_values.get(b, {}).get(m) if values else None
                    for m in shown for b in MARKED})  # fmt: skip
        families = values.families if values else {}
        for m in shown:
            family = families.get(m)
            row.update({f"{key}[{m}]": getattr(family, key) if family else None for key in FAMILY_COLUMNS})
        found.append({**row, **notes, "failed": failed, **(own or {}).get(system, {})})
    return found


def add_bootstrap(folder: TableFolder, rows: list[dict]) -> None:
    """Each task arithmetic row's bootstrap (``selection_bootstrap.json`` of its selection's job, as
    ``analysis_tables.bootstrap_columns``), the other rows' columns empty."""
    found = {
        (cell.dataset, cell.model, cell.merge, selection): job_results.bootstrap(folder.result_dir(cell, selection))
        for cell in folder.cells
        for selection in cell.selections(folder.cfg.table.selections)
    }
    for row in rows:
        key = (row["dataset"], row["model"], row["merge"], row["selection"])
        row.update(bootstrap_columns(found.get(key) if row["system"] == TASK_ARITHMETIC else None))


def guard_cells(folder: TableFolder, compose) -> tuple[test_guard.TableGuard, dict[str, str]]:
    """Each cell's search space recorded in the table's ``test_guard.json`` (``test_guard.TableGuard``), and the cells
    whose search space was set after test results of the cell under another had been seen, with why; under
    ``table.strict_test_guard`` such a cell is refused before anything runs."""
    cfg = folder.cfg
    guard = test_guard.TableGuard(folder.folder / "test_guard.json", folder.storage)
    alphas = search_space([alpha_choice(cfg.selection.alphas)])[0]
    marked = {}
    for cell in folder.cells:
        # λ's grid as the cell's steps choose from it: its dev sweep and selections each override /lam: dev_grid
        lam = LamConfig(**OmegaConf.to_container(compose([*cell.overrides, "selection=stability"]).lam, resolve=True))
        space = test_guard.search_space_of(alphas, lam, cell.config.retriever.dense)
        record = guard.set_search_space(cell.name, cell.config, space)
        test_guard.check(record, cfg.table.strict_test_guard, "table.strict_test_guard", f"cell {cell.name}")
        if test_guard.tuned_after_test(record):
            marked[cell.name] = test_guard.describe(record)
    guard.save()
    return guard, marked


def record_tests(folder: TableFolder, guard: test_guard.TableGuard) -> None:
    """Each cell's done jobs, test results seen from now on, in the table's ``test_guard.json`` and its storage."""
    name = folder.cfg.table.name
    for cell in folder.cells:
        done = [s for s in cell.selections(folder.cfg.table.selections) if s not in folder.missing(cell)]
        guard.add_tests(cell.name, f"{name}/{cell.name}", cell.config, [f"table {name}: {s}" for s in done])
    guard.save()


def _warnings_text(metrics: dict) -> str:
    """A job's warnings (queries that scored 0, measures the first stage's depth limits) as one line."""
    return "; ".join(f"{kind}: {' '.join(ids)}" for kind, ids in metrics.get("warnings", {}).items())


def run_table(cfg: Config, out_dir: Path, sampler_seed: int | None = None) -> dict:
    """``task=table``: run the grid's missing cells, then compile and log the table into ``table.dir`` (see
    docs/tables.md); ``out_dir``, the command's own job dir, holds its log."""
    from hydra import compose
    from hydra.core.hydra_config import HydraConfig

    hydra = HydraConfig.get()
    check_scheduler(hydra.launcher)  # every cell's steps run through it
    shared = command_overrides(list(hydra.overrides.task), list(hydra.overrides.hydra))
    config_dirs = [
        f"--config-dir={source.path.removeprefix('file://')}"
        for source in hydra.runtime.config_sources
        if source.provider == "command-line" and source.schema == "file"
    ]
    found = cells(cfg, lambda extra: compose("config", overrides=[*shared, *extra]))
    pins = Path(cfg.table.dir) / "pinned"  # the cells' model configs their general-domain jobs choose
    general = general_domains(cfg, lambda extra: compose("config", overrides=[*shared, *extra]), found, pins)
    folder = TableFolder(cfg, Path(cfg.table.dir), shared, found, config_dirs, general)
    folder.check_settings()
    guard, tuned_after_test = guard_cells(folder, lambda extra: compose("config", overrides=[*shared, *extra]))
    todo = sum(1 for cell in found if folder.missing(cell))
    log.info("Table %s: %d cells, %d done, %d to run", cfg.table.name, len(found), len(found) - todo, todo)
    failures = folder.run(folder.cells)
    general_failures = folder.run(folder.general)  # after the cells, whose choices they evaluate
    record_tests(folder, guard)
    # a failed selection's rows say so: the others are compiled all the same
    table_rows = rows(folder, tuned_after_test)
    table_general_rows = general_rows(folder)
    if cfg.selection.bootstrap.resamples:
        add_bootstrap(folder, table_rows)
    control = supervised(found)
    text = compiled_table.texts(cfg, table_rows, table_general_rows, control)
    for name, content in text.items():
        with atomic_path(folder.folder / name) as tmp:
            tmp.write_text(content)
    config = {"table": cfg.table.name, "cells": [c.name for c in found], "overrides": shared}
    compiled_table.log_to_wandb(cfg, folder.folder, config, table_rows, table_general_rows, control)
    print(f"\n{text['table.md']}")
    print(f"Table: {folder.folder / 'table.md'} (and table.tex, table.csv)")
    if failures or general_failures:
        total = sum(len(cell.selections(cfg.table.selections)) for cell in found)
        also = f" and {len(general_failures)} general-domain evaluations" if general_failures else ""
        message = (
            f"{len(failures)} of {total} selections{also} failed (rows marked failed); rerun the same command:\n  "
        )
        failures += general_failures
        log.error("%s", message + "\n  ".join(failures))
        sys.exit(f"taskvec-ir: {message}" + "\n  ".join(failures))
    return {"cells": len(found)}
