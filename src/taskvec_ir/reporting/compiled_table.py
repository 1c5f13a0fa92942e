"""A compiled table of cells (``task=table``) as its files, table.md, table.tex and table.csv, from its rows and its
general-domain rows; and its W&B run, which logs both as tables and summarises the table.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.model import SUPERVISED_LABEL, SUPERVISED_TAG
from taskvec_ir.config.systems import TASK_ARITHMETIC
from taskvec_ir.reporting import analysis_tables, results_tables, tracking
from taskvec_ir.reporting.lineage import code_provenance
from taskvec_ir.reporting.rendering import Table, csv_text, latex, markdown


def texts(cfg: Config, rows: list[dict], general_rows: list[dict], supervised: bool) -> dict[str, str]:
    """table.md, table.tex and table.csv: the cells table of each shown measure, the label-free α's distance, the
    analyses', the general domain's and the bootstrap's sections (``rows`` hold the bootstrap's columns where
    ``selection.bootstrap`` ran); ``supervised``: a supervised control's table, which every heading says."""
    measure, shown_measures = cfg.objective, results_tables.shown_measures(cfg.objective, cfg.measures, cfg.retriever)
    depth = results_tables.depth_note(cfg.measures, cfg.retriever, table=True)
    shown = {m: results_tables.cells_table(rows, m, cfg.significance, cfg.retriever.dense) for m in shown_measures}
    shown = {m: replace(t, footnote=t.footnote + depth) for m, t in shown.items()}
    distance = results_tables.label_free_distance(rows, measure)
    general_shown = general_sections(cfg, general_rows, shown_measures)
    control = f" — {SUPERVISED_LABEL}" if supervised else ""
    if control:  # in the rendered tables too (LaTeX's headings are comments)
        shown = {
            m: replace(t, footnote=f"A {SUPERVISED_LABEL}: ΘD used relevance labels. {t.footnote}")
            for m, t in shown.items()
        }
    text = {
        "table.md": "\n".join(f"### {m}{control}\n\n{markdown(table)}" for m, table in shown.items())
        + f"\n### Label-free α against the labelled choice{control}\n\n{markdown(distance)}"
        + analysis_tables.analysis_sections(rows, measure)
        + pareto_section(rows, measure)
        + "".join(f"\n### {title}{control}\n\n{markdown(table)}" for title, table in general_shown.items()),
        "table.tex": "\n".join(f"% {m}{control}\n{latex(table)}" for m, table in shown.items())
        + "".join(f"\n% {title}{control}\n{latex(table)}" for title, table in general_shown.items()),
    }
    if cfg.selection.bootstrap.resamples:
        settings = cfg.selection.bootstrap
        sure = analysis_tables.bootstrap_table(rows, measure, settings.confidence, settings.resamples)
        text["table.md"] += f"\n### How sure is each selection\n\n{markdown(sure)}"
        text["table.tex"] += f"\n% How sure is each selection\n{latex(sure)}"
    text["table.csv"] = csv_text([*rows, *general_rows])
    return text


def pareto_section(rows: list[dict], measure: str) -> str:
    """table.md's section that sets each Pareto row beside its dev row, where the table has Pareto rows."""
    table = analysis_tables.pareto_table(rows, measure)
    return f"\n### Pareto rows against the dev rows\n\n{markdown(table)}" if table.rows else ""


def general_sections(cfg: Config, general_rows: list[dict], measures: list[str]) -> dict[str, Table]:
    """The general-domain sections by title: one per collection and shown measure."""
    return {
        f"General domain ({label}): Δ against ΘT, {measure}": results_tables.general_domain_table(
            general_rows, label, measure, cfg.significance
        )
        for label in cfg.table.entries("general_domain")
        for measure in measures
        if any(r["general_domain"] == label for r in general_rows)
    }


def log_to_wandb(
    cfg: Config, folder: Path, config: dict, rows: list[dict], general_rows: list[dict], supervised: bool
) -> None:
    """The table's W&B run (``config``: what it holds, with the code that compiled it), named
    ``table/<name>-<suffix>`` (a recompile is a new run, never a second one of the same name), in group
    ``table/<name>`` and found by the tag every job of the table carries: its rows and its general-domain rows as
    tables, and ``table_summary`` as its summary."""
    name = cfg.table.name
    tags = [f"table:{name}", *([SUPERVISED_TAG] if supervised else [])]
    settings = replace(
        cfg.wandb, group=f"table/{name}", job_type="table", name=tracking.unique_name(f"table/{name}"), tags=tags
    )
    config = {**config, "provenance": code_provenance(os.getcwd())}
    with tracking.wandb_run(config, folder, settings, {}) as run:
        logged = {"table": rows, **({"general_domain": general_rows} if general_rows else {})}
        tracking.log_report(run, {}, {key: _columns_and_data(found) for key, found in logged.items()})
        tracking.log_summary(run, table_summary(cfg.objective, rows, general_rows))


def table_summary(measure: str, rows: list[dict], general_rows: list[dict]) -> dict:
    """What the runs table compares tables by: how many cells, selection jobs and general-domain jobs the table
    holds and how many failed, and per dataset the best task arithmetic ``measure`` over its cells' selections
    (``best/<dataset>/task_arithmetic``) and which cell and selection it was (``best/<dataset>/by``)."""
    jobs = {(r["dataset"], r["model"], r["merge"], r["selection"]): r["failed"] for r in rows}
    general = {(r["general_domain"], r["model"], r["merge"], r["alpha"], r["lam"]): r["failed"]
               for r in general_rows if r["system"] == TASK_ARITHMETIC}  # fmt: skip
    summary = {
        "cells": len({job[:3] for job in jobs}),
        "selection_jobs": len(jobs),
        "general_domain_jobs": len(general),
        "failed_jobs": sum(failed is not None for failed in [*jobs.values(), *general.values()]),
        "objective_measure": measure,
    }
    done = [r for r in rows if r["system"] == TASK_ARITHMETIC and r.get(measure) is not None]
    for dataset in dict.fromkeys(r["dataset"] for r in done):
        best = max((r for r in done if r["dataset"] == dataset), key=lambda r: r[measure])
        summary[f"best/{dataset}/task_arithmetic"] = best[measure]
        summary[f"best/{dataset}/by"] = f"{best['model']}/{best['merge']}/{best['selection']}"
    return summary


def _columns_and_data(rows: list[dict]) -> tuple[list[str], list[list]]:
    """Rows as a W&B table takes them."""
    columns = list(rows[0])
    return columns, [[r[c] for c in columns] for r in rows]
