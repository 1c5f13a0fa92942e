"""What a job tells a reader of its folder without its log: ``results.md`` (the command, the settings its numbers
depend on and how α and λ were chosen, the results table, what to be wary of), and the summary it prints, which its
``app.log`` holds too. A sweep's final evaluation writes the same page, its table with significance marks
(``taskvec_ir.runs.sweeping.final_report``).
"""

from __future__ import annotations

import logging
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.measures import BEYOND, UNMOVED
from taskvec_ir.config.sources import config_key, model_sources
from taskvec_ir.reporting.rendering import Table, markdown
from taskvec_ir.reporting.results_tables import depth_note, job_table
from taskvec_ir.storage.outputs import atomic_path

log = logging.getLogger("taskvec_ir")
RESULTS_PAGE = "results.md"


@dataclass(frozen=True)
class ResultsPage:
    """A job's ``results.md``, top to bottom."""

    title: str  # the job's header: dataset, split, model, α, λ
    command: str | None  # how it was run (None outside a Hydra job)
    settings: list[str]
    table: Table | None  # None where the job evaluated no system (save_merged alone)
    lines: list[str]  # what the job says below its table: the bootstrap's verdict, the analyses'
    warnings: list[str]

    def markdown(self) -> str:
        parts = [f"# {self.title}", ""]
        parts += [self.command, ""] if self.command else []
        parts += ["## Settings", "", *(f"- {setting}" for setting in self.settings), ""]
        if self.table is not None:
            parts += ["## Results", "", markdown(self.table).rstrip("\n"), ""]
        parts += [*(f"{line}  " for line in self.lines), ""] if self.lines else []  # two spaces: a line break
        parts += ["## Warnings", "", *(f"- {warning}" for warning in self.warnings), ""] if self.warnings else []
        return "\n".join(parts)

    def write(self, folder: Path) -> None:
        with atomic_path(folder / RESULTS_PAGE) as tmp:
            tmp.write_text(self.markdown())


def results_page(outcome, header: str, lines: Sequence[str]) -> ResultsPage:
    """The page of a job (``outcome``: its ``runs.job.JobOutcome``), under the first line of ``header``; the rest of
    ``header`` and ``lines`` go below the table. The table is the outcome's own (a report's, with significance), or
    its means with each system's λ (and, in its footnote, the measures the first stage's depth limits)."""
    cfg: Config = outcome.cfg
    title, *more = header.splitlines()
    table = outcome.table
    if table is None and outcome.means:
        table = job_table(
            outcome.means, cfg.measures, outcome.extra["lam"], depth=depth_note(cfg.measures, cfg.retriever, False)
        )
    queries = len(next(iter(next(iter(outcome.per_query.values())).values()))) if outcome.per_query else None
    alpha = outcome.result.get("alpha", cfg.alpha.value) if cfg.selection.method else cfg.alpha.value
    return ResultsPage(
        title,
        job_command(),
        settings(cfg, queries, alpha, outcome.lam, outcome.extra.get("lam", {}), outcome.extra.get("selection")),
        table,
        [*more, *lines],
        warnings(outcome.extra.get("warnings", {})) if outcome.means else [],
    )


def job_command() -> str | None:
    """The running Hydra job's command line (its config dirs and overrides; a sweep's study, set by its sweeper,
    left out: the page names it), or None outside Hydra. A job of a multirun says so: its overrides alone run one
    job, the multirun's settings aside."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    if not HydraConfig.initialized():
        return None
    hydra = HydraConfig.get()
    config_dirs = [
        f"--config-dir={source.path.removeprefix('file://')}"
        for source in hydra.runtime.config_sources
        if source.provider == "command-line" and source.schema == "file"
    ]
    overrides = [override for override in hydra.overrides.task if not override.startswith("sweep.study=")]
    command = f"`{shlex.join(['taskvec-ir', *config_dirs, *overrides])}`"
    if hydra.mode == RunMode.MULTIRUN:
        return f"A job of the multirun in `{hydra.sweep.dir}`, with the overrides {command}"
    return f"Command: {command}"


def settings(
    cfg: Config,
    queries: int | None,
    alpha: float | None,
    lam: float | None,
    lambdas: Mapping[str, float | None],
    selection: Mapping | None,
) -> list[str]:
    """The settings a job's numbers depend on, in words: dataset and split, model and merge, first stage, and α and λ
    with how each was chosen."""
    dataset, model, retriever = cfg.dataset, cfg.model, cfg.retriever
    sources = "; ".join(
        f"{config_key(role)}: {source if isinstance(source, str) else 'adapted by taskvec-ir (task=adapt)'}"
        for role, source in model_sources(model).items()
    )
    merge = cfg.merge_setting().identity()
    merge.pop("alphas")
    first_stage = (
        f"each model system ranks the whole corpus (retriever=dense), top {retriever.top_k} kept"
        if retriever.dense
        else f"{retriever.backend} ({retriever.path})"
        if retriever.path
        else f"BM25 ({retriever.bm25}, k1={retriever.k1:g}, b={retriever.b:g}), top {retriever.top_k} re-ranked"
    )
    alpha_text, lam_text = how_chosen(cfg, alpha, lam, selection)
    fused = {s: v for s, v in lambdas.items() if v is not None}
    if len(set(fused.values())) > 1:
        lam_text += "; per system: " + ", ".join(f"{s} {v:g}" for s, v in fused.items())
    return [
        f"**dataset**: {dataset.name} ({dataset.docs}), split {cfg.split}"
        + (f": {queries} judged queries" if queries is not None else ""),
        f"**model**: {model.name} ({model.kind}); {sources}",
        "**merge**: " + ", ".join(f"{key}={value}" for key, value in merge.items()),
        f"**first stage**: {first_stage}",
        f"**α**: {alpha_text}",
        f"**λ (BM25 weight)**: {lam_text}",
        f"**measures**: {', '.join(cfg.measures)}; objective {cfg.objective}",
    ]


def how_chosen(cfg: Config, alpha: float | None, lam: float | None, selection: Mapping | None) -> tuple[str, str]:
    """α and λ, each with how it was chosen: as given, by a selection, by a sweep's trials, or from lam.grid."""
    by, sweep = cfg.objective, cfg.sweep
    grid = f"chosen from lam.grid by {by} on {cfg.lam_tuning_split()}"
    if selection is not None:
        chosen = f"chosen by selection={selection['method']} ({selection['criterion']})"
        per_fold = " per fold: " + " ".join(f"{_g(f['alpha'])}/{_g(f['lam'])}" for f in selection["folds"])
        alpha_text = f"{_g(alpha)}, {chosen}" if alpha is not None else f"{chosen},{per_fold}"
        lam_text = f"{_g(lam)}, {chosen}" if lam is not None else f"{chosen},{per_fold}"
    elif sweep is not None and sweep.final:
        study = f"study {sweep.study.name}" if sweep.study.name else "the sweep"
        alpha_text = f"{_g(alpha)}, the best of {study}'s trials on {sweep.tune_split} by {by}"
        searched = "lam.value" in (sweep.study.search_space or {})
        lam_text = f"{_g(lam)}, the best trial's " + (
            "(searched with α)" if searched else f"(chosen from lam.grid by {by} on {sweep.tune_split})"
        )
    elif cfg.trial is not None:
        study = f" of study {sweep.study.name}" if sweep is not None and sweep.study.name else ""
        alpha_text = f"{_g(alpha)}, drawn by the sweeper (trial {cfg.trial}{study})"
        lam_text = f"{_g(lam)}, " + ("drawn by the sweeper" if cfg.lam.value is not None else grid)
    else:
        alpha_text = f"{_g(alpha)}, as given (alpha.value)"
        lam_text = f"{_g(lam)}, " + ("as given (lam.value)" if cfg.lam.value is not None else grid)
    if cfg.retriever.dense:
        lam_text = "not applied: retriever=dense fuses nothing"
    return alpha_text, lam_text


def _g(value: float | None) -> str:
    return "–" if value is None else f"{value:g}"


def warnings(found: Mapping[str, list[str]]) -> list[str]:
    """The judged queries a mean counts as 0 (``FirstStage.warnings``: no text, no candidates, nothing relevant),
    in words; the measures the first stage's depth limits are said under the table."""
    why = {
        "no_text": "in the qrels, not among the split's queries",
        "no_candidates": "the first stage retrieved nothing",
        "missing_from_run_file": "the run file lists no document for it",
        "no_relevant": "every judgement is grade 0: nothing to find",
    }
    lines = []
    for kind, ids in found.items():
        if kind not in (UNMOVED, BEYOND):
            shown = ", ".join(ids[:10]) + (", …" if len(ids) > 10 else "")
            lines.append(f"{len(ids)} judged queries score 0 on every system ({why.get(kind, kind)}): {shown}")
    return lines


def show(lines: Sequence[str], console: bool = True) -> None:
    """``lines`` printed (unless not ``console``: a sweep's trial, whose sweeper prints a line for it) and written
    to the job's log files (Hydra's ``app.log``) as they are."""
    text = "\n".join(lines)
    if console:
        print(text)
    record = log.makeRecord(log.name, logging.INFO, __file__, 0, "%s", (text.lstrip("\n"),), None)
    for handler in logging.getLogger().handlers:  # the file handlers alone: the console has it printed already
        if isinstance(handler, logging.FileHandler):
            handler.handle(record)
