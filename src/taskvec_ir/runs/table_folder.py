"""A table's folder and the steps that fill it: where each cell's and general-domain entry's jobs lie, what is done
and what is missing, the settings they ran with (settings.json), and each missing step run as a ``taskvec-ir``
subprocess. What a step runs and when it resumes: docs/tables.md.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.config.table import PARETO_SELECTION
from taskvec_ir.errors import UserError
from taskvec_ir.runs import job_results
from taskvec_ir.runs.progress import Pace, Ticker, duration, sweep_progress
from taskvec_ir.runs.table_grid import Cell, GeneralDomain
from taskvec_ir.storage.outputs import write_json

log = logging.getLogger("taskvec_ir")
Setting = tuple[float, float | None]  # an (α, λ) a selection chose (λ None: retriever=dense, no fusion)
SWEPT = ("dev", PARETO_SELECTION)  # a cell's selections that are sweeps of its grid, each a step of its own


@dataclass(frozen=True)
class RunningStep:
    """A step whose command runs: what it is of its item's (``number`` of ``steps``), its log and when it began."""

    title: str  # "Cell scifact-minilm_demo-task_arithmetic"
    step: str
    number: int
    steps: int
    log_path: Path
    started: float

    def line(self) -> str:
        """``Cell …: dev (step 1 of 2) · 3/5 trials · 2 min 10 s elapsed, about 3 min 37 s left``: a sweep's trials
        as its log tells them, else the time spent."""
        sweep = sweep_progress(self.log_path.read_text()) if self.log_path.exists() else None
        pace = Pace(self.started, sweep.finished if sweep else 0)
        done = pace.line(sweep.done, sweep.total, "trials") if sweep else f"{duration(pace.elapsed())} elapsed"
        return f"{self.title}: {self.step} (step {self.number} of {self.steps}) · {done}"


@dataclass(frozen=True)
class Work:
    """What one cell or general-domain entry must leave in the table's folder: the folder of each job (by key: a
    cell's selection, a general domain's setting), in order, and the step that runs each (its log is
    ``<folder>/<step>.log``); ``kind`` and ``describe`` name it and a job in log lines and failures."""

    name: str
    kind: str
    folder: Path
    jobs: dict[Hashable, Path]
    step_of: dict[Hashable, str]
    describe: Callable[[Hashable], str]

    def missing(self) -> list:
        """The keys of the jobs not yet done (no ``metrics.json``), in order."""
        return [key for key, folder in self.jobs.items() if not job_results.done(folder)]

    def failure(self, key: Hashable) -> str:
        """Why a job is not done: its own error, else its step's log's error line."""
        recorded = job_results.failure(self.jobs[key])
        if recorded is not None:
            return recorded
        log_path = self.folder / f"{self.step_of[key]}.log"
        return f"{error_line(log_path)}; see {log_path}" if log_path.is_file() else "not run"


class TableFolder:
    """The table's folder: ``cells/<dataset>/<model>/<merge>/{dev,pareto,selection/<method>}``,
    ``general/<label>/<model>/<merge>/alpha_<α>-lam_<λ>`` (``table.general_domain``) and ``settings.json``."""

    def __init__(
        self,
        cfg: Config,
        folder: Path,
        shared: list[str],
        cells: list[Cell],
        config_dirs: list[str],
        general: Sequence[GeneralDomain] = (),
    ):
        self.cfg, self.folder, self.shared, self.cells, self.general = cfg, folder, shared, cells, list(general)
        self.config_dirs = config_dirs  # the command's --config-dir, where a user's table and datasets live
        self.storage = cfg.table.storage or f"sqlite:///{(folder / 'optuna.db').resolve()}"
        self.running: dict[Path, RunningStep] = {}  # by log file: the steps whose commands run now

    # -- where each job lies ----------------------------------------------------------------------------------
    def cell_dir(self, cell: Cell) -> Path:
        return self.folder / "cells" / cell.dataset / cell.model / cell.merge

    def result_dir(self, cell: Cell, selection: str) -> Path:
        if selection in SWEPT:
            return self.cell_dir(cell) / selection / "final"
        return self.cell_dir(cell) / "selection" / selection

    def general_dir(self, general: GeneralDomain, setting: Setting) -> Path:
        return self.folder / general.name / _setting_dir(*setting)

    def check_settings(self) -> None:
        """A cell's results stand for the config it ran with: a rerun whose cell would run with another config
        (another top_k, α grid, checkpoint, ...) is refused, naming the keys, rather than mixing the two. What
        does not change results may change: the launcher, the cache's and W&B's settings, the table's cells."""
        path = self.folder / "settings.json"
        recorded = json.loads(path.read_text()) if path.is_file() else {}
        current = {item.name: _results_config(item.config) for item in [*self.cells, *self.general]}
        # a Pareto row's results stand for its general collection and bound too
        current.update({f"{cell.name}/{PARETO_SELECTION}": _as_json(asdict(cell.retention))
                        for cell in self.cells if cell.retention})  # fmt: skip
        for name, config in current.items():
            if name in recorded and recorded[name] != config:
                keys = sorted(k for k in _flat(config).keys() | _flat(recorded[name]).keys()
                              if _flat(config).get(k) != _flat(recorded[name]).get(k))  # fmt: skip
                what = "general-domain evaluation" if name.startswith("general/") else "cell"
                what = "Pareto row" if name.endswith(f"/{PARETO_SELECTION}") else what
                raise UserError(
                    f"{self.folder}: {what} {name} was run with other settings ({', '.join(keys[:6])} differ): give "
                    f"another table.name, or delete the {what}'s folder to run it again"
                )
        write_json({**recorded, **current}, path)

    # -- what each cell and general-domain entry must leave done ----------------------------------------------
    def work(self, item: Cell | GeneralDomain) -> Work:
        """A cell's jobs: one per selection (dev: its sweep's final evaluation); a general domain's: one per setting
        its cells' done selections chose, their steps one multirun per λ."""
        if isinstance(item, Cell):
            selections = item.selections(self.cfg.table.selections)
            return Work(
                item.name,
                "Cell",
                self.cell_dir(item),
                {s: self.result_dir(item, s) for s in selections},
                {s: s if s in SWEPT else "selection" for s in selections},
                str,
            )
        chosen = dict.fromkeys(s for _, _, settings in self.general_choices(item) for s in settings)
        return Work(
            item.name,
            "General domain",
            self.folder / item.name,
            {s: self.general_dir(item, s) for s in chosen},
            {s: _lam_step(s[1]) for s in chosen},
            lambda s: f"α {s[0]:g} " + ("(no fusion)" if s[1] is None else f"λ {s[1]:g}"),
        )

    def missing(self, item: Cell | GeneralDomain) -> list:
        """A cell's selections, or a general domain's settings, not yet done (their ``metrics.json`` not written)."""
        return self.work(item).missing()

    def failure(self, item: Cell | GeneralDomain, key: Hashable) -> str:
        return self.work(item).failure(key)

    def choice(self, cell: Cell, selection: str) -> tuple[float | None, float | None, str | None]:
        """α and λ (None where folds chose differently) and, for cross-validation, each fold's α/λ."""
        if selection in SWEPT:
            return *job_results.sweep_choice(self.cell_dir(cell) / selection), None
        chosen = job_results.metrics(self.result_dir(cell, selection))["selection"]
        folds = (
            " ".join(f"{f['alpha']:g}" + ("" if f["lam"] is None else f"/{f['lam']:g}") for f in chosen["folds"])
            if len(chosen["folds"]) > 1
            else None
        )
        return chosen["alpha"], chosen["lam"], folds

    def chosen_settings(self, cell: Cell, selection: str) -> dict[Setting, int]:
        """The (α, λ) a done selection of ``cell`` chose for task arithmetic, with how many of its folds chose each
        (one setting, one fold, but under cross-validation, whose folds may differ)."""
        if selection in SWEPT:
            alpha, lam, _ = self.choice(cell, selection)
            return {(float(alpha), _float(lam)): 1}
        folds = job_results.metrics(self.result_dir(cell, selection))["selection"]["folds"]
        return dict(Counter((float(fold["alpha"]), _float(fold["lam"])) for fold in folds))

    def general_choices(self, general: GeneralDomain) -> Iterator[tuple[Cell, str, dict[Setting, int]]]:
        """(cell, selection, its settings) of every done selection of the cells ``general`` covers."""
        for cell in self.cells:
            if general.covers(cell):
                missing = self.missing(cell)
                for selection in cell.selections(self.cfg.table.selections):
                    if selection not in missing:
                        yield cell, selection, self.chosen_settings(cell, selection)

    # -- the steps: taskvec-ir commands ---------------------------------------------------------------------------
    def steps(self, item: Cell | GeneralDomain) -> list[tuple[str, list[str]]]:
        """(name, overrides) of each step ``item`` still needs (``cell_steps``, ``general_steps``)."""
        return self.cell_steps(item) if isinstance(item, Cell) else self.general_steps(item)

    def cell_steps(self, cell: Cell) -> list[tuple[str, list[str]]]:
        """A cell's dev sweep, its Pareto sweep (``table.pareto``), then its other selections, where they are
        missing."""
        missing, cell_dir, table = self.missing(cell), self.cell_dir(cell), self.cfg.table
        # table.name tags every job of the cell (table:<name>): one W&B filter shows the whole table; the cell's
        # runs (its sweeps' trials and final evaluations, its selections) are one W&B group
        base = [*self.shared, *cell.overrides, "task=evaluate", f"table.name='{table.name}'"]
        base.append(f"wandb.group='table/{table.name}/{cell.name}'")
        steps = []
        if "dev" in missing:
            steps.append(("dev", ["-m", *base, "sweep=paper_grid", *self.grid_sweep(cell, "dev")]))
        if PARETO_SELECTION in missing:
            # the dev sweep's grid, each α once, with a second objective; the choice reads the general collection,
            # which the selection bootstrap does not resample (sweep=pareto refuses it)
            pareto = [*table.pareto.step_overrides(), "hydra/sweeper/sampler=grid", "selection.bootstrap.resamples=0"]
            steps.append((PARETO_SELECTION, ["-m", *base, *pareto, *self.grid_sweep(cell, PARETO_SELECTION)]))
        others = [s for s in missing if s not in SWEPT]
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
                    ],
                )
            )
        return steps

    def grid_sweep(self, cell: Cell, step: str) -> list[str]:
        """A cell's sweep of every α of ``selection.alphas`` once, its study in the table's storage, named for the
        cell (and for the step, but for the dev sweep's)."""
        alphas, table = self.cfg.selection.alphas, self.cfg.table
        return [
            alpha_choice(alphas),
            f"hydra.sweeper.n_trials={len(alphas)}",
            f"hydra.sweep.dir={self.cell_dir(cell) / step}",
            f"hydra.sweeper.storage={self.storage}",
            f"hydra.sweeper.study_name={table.name}/{cell.name}" + ("" if step == "dev" else f"/{step}"),
        ]

    def general_steps(self, general: GeneralDomain) -> list[tuple[str, list[str]]]:
        """A general domain's missing settings: one multirun per λ, over the α values chosen with it (a job per
        (α, λ), through the launcher, as the cells' selections); under retriever=dense, one multirun over α, with no
        λ (nothing is fused)."""
        by_lam: dict[float | None, list[float]] = {}
        for alpha, lam in self.missing(general):
            by_lam.setdefault(lam, []).append(alpha)
        name = self.cfg.table.name
        base = [*self.shared, *general.overrides, "task=evaluate", f"table.name='{name}'"]
        steps = []
        for lam, alphas in by_lam.items():
            setting = _setting_dir("${alpha.value}", lam)
            steps.append(
                (
                    _lam_step(lam),
                    [
                        "-m",
                        *base,
                        f"alpha.value={','.join(repr(alpha) for alpha in alphas)}",
                        *([] if lam is None else [f"lam.value={lam!r}"]),
                        f"hydra.sweep.dir={self.folder / general.name}",
                        f"hydra.sweep.subdir={setting}",
                        # one group per general domain and model × merge (a job is shared by every cell that chose
                        # its setting); a plain evaluation, which only the table knows to be a general domain's
                        f"wandb.group='table/{name}/{general.name}'",
                        "wandb.job_type=general",
                    ],
                )
            )
        return steps

    progress_every = 60.0  # seconds between the progress lines of the steps that run

    def run(self, items: Sequence[Cell | GeneralDomain]) -> list[str]:
        """Each of ``items`` with missing jobs (cells; then general domains, which evaluate the cells' choices),
        ``table.cells_at_once`` at a time, saying every ``progress_every`` seconds where each running step is, and
        after each item how many are done and the time left; the failures, one line per job not done."""
        todo = [item for item in items if self.missing(item)]
        pace, results = Pace(), {}
        with ThreadPoolExecutor(self.cfg.table.cells_at_once) as pool, Ticker(self.progress_every, self._progress):
            futures = {pool.submit(self.run_steps, item): i for i, item in enumerate(todo)}
            for future in as_completed(futures):
                results[futures[future]] = future.result()
                pace.finished = len(results)
                kind = self.work(todo[futures[future]]).kind.lower()
                log.info("Table %s: %s", self.cfg.table.name, pace.line(len(results), len(todo), f"{kind}s run"))
        return [failure for i in range(len(todo)) for failure in results[i]]

    def _progress(self) -> None:
        for step in list(self.running.values()):
            log.info("%s", step.line())

    def run_steps(self, item: Cell | GeneralDomain) -> list[str]:
        """Run ``item``'s missing steps, each as a ``taskvec-ir`` command logged to ``<step>.log`` in its folder;
        what failed (one line per job not done)."""
        work, started = self.work(item), time.monotonic()
        steps = self.steps(item)
        for number, (step, overrides) in enumerate(steps, start=1):
            log_path = work.folder / f"{step}.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            running = RunningStep(f"{work.kind} {work.name}", step, number, len(steps), log_path, time.monotonic())
            log.info("%s %s: %s (step %d of %d; log: %s)", work.kind, work.name, step, number, len(steps), log_path)
            self.running[log_path] = running
            try:
                if self.command(overrides, log_path) != 0:
                    log.warning("%s %s: %s failed; see %s", work.kind, work.name, step, log_path)
            finally:
                self.running.pop(log_path)
        failures = [f"{work.name}: {work.describe(key)} failed ({work.failure(key)})" for key in work.missing()]
        if not failures:
            log.info("%s %s: done in %s", work.kind, work.name, duration(time.monotonic() - started))
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


def alpha_choice(alphas: Sequence[float]) -> str:
    """The override a cell's dev sweep searches α with: every α of ``selection.alphas``."""
    return f"alpha.value=choice({','.join(repr(float(a)) for a in alphas)})"


def _setting_dir(alpha, lam: float | None) -> str:
    """A general-domain job's folder, as its hydra.sweep.subdir writes it (str of a float): ``alpha_0.5-lam_0.3``,
    or ``alpha_0.5-no_fusion`` under retriever=dense."""
    return f"alpha_{alpha}-" + ("no_fusion" if lam is None else f"lam_{lam}")


def _lam_step(lam: float | None) -> str:
    return "no_fusion" if lam is None else f"lam_{lam}"


def _float(value) -> float | None:
    return None if value is None else float(value)


def error_line(log_path: Path) -> str:
    """The line of a failed step's log that says why: its last error line, else its last line."""
    lines = [line.strip() for line in log_path.read_text().splitlines() if line.strip()]
    lines = [line for line in lines if "HYDRA_FULL_ERROR" not in line] or ["(no output)"]
    errors = [line for line in lines if line.startswith("taskvec-ir:") or "Error" in line or "failed" in line]
    return (errors or lines)[-1][:300]


def _results_config(config: Config) -> dict:
    """What of a cell's config its results depend on, as JSON values."""
    values = _as_json(asdict(config))
    for key in ("table", "cache", "wandb", "data", "task", "significance"):  # significance: compiled, not run
        values.pop(key)
    return values


def _as_json(values: dict) -> dict:
    return json.loads(json.dumps(values, default=str))


def _flat(values: dict, prefix: str = "") -> dict:
    """``{"a": {"b": 1}}`` as ``{"a.b": 1}``."""
    flat = {}
    for key, item in values.items():
        name = f"{prefix}{key}"
        flat.update(_flat(item, f"{name}.") if isinstance(item, dict) and item else {name: item})
    return flat
