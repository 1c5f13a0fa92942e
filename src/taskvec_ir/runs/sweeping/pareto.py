"""A Pareto sweep's outcome (``sweep=pareto``, docs/sweeps.md): its front, the trials no other beats on both the
target's dev measure and the general-domain retention, and the one rule for the setting evaluated on test: of the
trials whose retention loss stays within ``sweep.retention.bound``, the best dev score (ties: the tie rule)."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from pathlib import Path

import optuna

from taskvec_ir.errors import UserError
from taskvec_ir.pipeline.selection.tie_rule import TIE
from taskvec_ir.reporting.plots import pareto_plot
from taskvec_ir.storage.outputs import atomic_path

COLUMNS = ["trial", "alpha", "lam", "objective", "retention", "front", "within_bound", "chosen"]


def is_pareto(study: optuna.Study) -> bool:
    """Whether ``study`` has two objectives: the target's measure, then the retention."""
    return len(study.directions) == 2


def front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's Pareto front (Optuna's ``Study.best_trials``: the completed trials that no other is at least as
    good as on both objectives and better on one), by number."""
    return sorted(study.best_trials, key=lambda t: t.number)


def within_bound(trials: Sequence[optuna.trial.FrozenTrial], bound: float, study_name: str) -> list:
    """The trials whose retention loss (minus their retention) is at most ``bound``, equal within the tie rule's
    tolerance; refused, naming the least loss reached, where none is."""
    kept = [t for t in trials if -t.values[1] <= bound + TIE]
    if not kept:
        least = max(trials, key=lambda t: t.values[1])
        raise UserError(
            f"sweep.retention.bound: no completed trial of study {study_name} loses at most {bound:g} against ΘT on "
            f"the general collection (the least loss is {-least.values[1]:.4g}, trial {least.number}): no setting is "
            "evaluated on test. Raise sweep.retention.bound, run more trials (hydra.sweeper.n_trials), or search "
            "smaller α (e.g. 'alpha.value=interval(0.0,0.5)'); the front is in pareto_front.md"
        )
    return kept


def trial_rows(trials: Sequence[Mapping], front_numbers: set[int], bound: float, chosen: int | None) -> list[dict]:
    """One row per completed trial (``trials``: each one's ``number``, ``value``, ``retention``, ``lam`` and
    ``params``), with whether it is on the front, within the bound, and the chosen one."""
    return [
        {
            "trial": t["number"],
            "alpha": t["params"].get("alpha.value"),
            "lam": t["lam"],
            "objective": t["value"],
            "retention": t["retention"],
            "front": t["number"] in front_numbers,
            "within_bound": -t["retention"] <= bound + TIE,
            "chosen": t["number"] == chosen,
        }
        for t in sorted(trials, key=lambda t: t["number"])
    ]


def front_markdown(rows: Sequence[Mapping], objective: str, general: str, bound: float) -> str:
    """The front as a Markdown table, by α, the chosen setting marked."""
    lines = [
        f"Pareto front: {objective} on the tuning split against the retention on {general} ({objective} of TA minus "
        f"ΘT's); chosen (**bold**): the best tuning score whose loss is at most {bound:g}",
        "",
        "| trial | α | λ | tuning | retention | within bound |",
        "| ---: | ---: | ---: | ---: | ---: | :---: |",
    ]
    for row in sorted((r for r in rows if r["front"]), key=lambda r: (r["alpha"] is None, r["alpha"] or 0.0)):
        cells = [
            str(row["trial"]),
            "–" if row["alpha"] is None else f"{row['alpha']:.4g}",
            "–" if row["lam"] is None else f"{row['lam']:g}",
            f"{row['objective']:.4f}",
            f"{row['retention']:+.4f}",
            "yes" if row["within_bound"] else "no",
        ]
        lines.append("| " + " | ".join(f"**{c}**" if row["chosen"] else c for c in cells) + " |")
    return "\n".join(lines) + "\n"


def write_front(rows: Sequence[Mapping], sweep_dir: Path, objective: str, general: str, bound: float) -> None:
    """``pareto_front.md`` (the front), ``pareto_front.csv`` (every completed trial, flagged) and
    ``pareto_front.png`` into the sweep's dir."""
    with atomic_path(sweep_dir / "pareto_front.md") as tmp:
        tmp.write_text(front_markdown(rows, objective, general, bound))
    text = io.StringIO()
    writer = csv.DictWriter(text, COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_path(sweep_dir / "pareto_front.csv") as tmp:
        tmp.write_text(text.getvalue())
    pareto_plot(rows, sweep_dir / "pareto_front.png", objective, general, bound)
