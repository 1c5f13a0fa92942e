"""What a selection chose (a ``Choice``: each fold's α and λ, the criterion at every setting considered, the
per-query evidence), the rule that picks the best setting, and what is done with a choice: its systems evaluated
fold by fold, its criterion plotted."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from taskvec_ir.config.systems import BM25
from taskvec_ir.errors import UserError
from taskvec_ir.ir import evaluation
from taskvec_ir.pipeline.pipeline import Pipeline, Run
from taskvec_ir.pipeline.selection import tie_rule
from taskvec_ir.reporting import plots

Setting = tuple[float, float]  # (α, λ)


@dataclass(frozen=True)
class Fold:
    """α and λ for some of the evaluated queries (``queries``; None: all of them)."""

    queries: tuple[str, ...] | None
    alpha: float
    lam: float | None  # None under retriever=dense (no fusion)


@dataclass(frozen=True)
class Evidence:
    """What a choice maximises, per query: ``values[setting][query]`` (a query absent: the criterion is undefined
    for it there), and the queries each fold chooses on (``tuning``: one entry outside cross-validation). A
    setting's criterion is the mean of its values over a fold's tuning queries where defined; computed once, it
    is what a bootstrap resamples (``taskvec_ir.pipeline.bootstrap``)."""

    values: Mapping[Setting, Mapping[str, float]]
    tuning: Sequence[Sequence[str]]


@dataclass
class Choice:
    """What a selection chose, and the criterion it maximised at every setting it considered (``curve``: rows
    of fold, α, λ, value and the queries the value left out, ``undefined``; fold is None outside
    cross-validation). ``details``: what else the choice depended on (e.g. the pseudo-queries' source)."""

    method: str
    criterion: str
    folds: list[Fold]
    curve: list[dict]
    details: dict = field(default_factory=dict)
    baseline_lambdas: dict[str, list[float]] = field(default_factory=dict)  # each fused baseline's λ, fold by fold
    evidence: Evidence | None = field(default=None, repr=False)  # the per-query values the choice was made from

    def lambdas(self, system: str) -> list[float]:
        """``system``'s λ in each fold: a baseline's own, else the fold's."""
        return self.baseline_lambdas.get(system) or [fold.lam for fold in self.folds]

    def system_lambdas(self, systems: Sequence[str]) -> dict[str, float | None]:
        """Each system's λ (None for BM25, and where folds chose differently)."""
        return {s: None if s == BM25 else _common(self.lambdas(s)) for s in systems}

    @property
    def alpha(self) -> float | None:
        """The α every fold chose; None when folds chose differently (no one α ran: see ``folds``)."""
        return _common(fold.alpha for fold in self.folds)

    @property
    def lam(self) -> float | None:
        """The λ every fold chose; None when folds chose differently."""
        return _common(fold.lam for fold in self.folds)

    def describe(self) -> dict:
        return {
            "method": self.method,
            "criterion": self.criterion,
            "alpha": self.alpha,
            "lam": self.lam,
            "folds": [
                {
                    "queries": None if f.queries is None else len(f.queries),
                    "alpha": f.alpha,
                    "lam": f.lam,
                    **{f"lam[{system}]": lambdas[i] for system, lambdas in self.baseline_lambdas.items()},
                }
                for i, f in enumerate(self.folds)
            ],
            **self.details,
            # JSON has no NaN: an undefined value is null (its row's ``undefined`` says how many queries lacked it)
            "curve": [{k: None if _undefined(v) else v for k, v in row.items()} for row in self.curve],
        }

    def settings_text(self) -> str:
        """``α=0.5 · λ=0.3``, or each fold's ``α/λ`` when folds differ."""
        if all(fold.lam is None for fold in self.folds):  # retriever=dense: no fusion
            return (
                f"α={self.alpha:g} · no fusion"
                if self.alpha is not None
                else "α per fold: " + " ".join(f"{f.alpha:g}" for f in self.folds)
            )
        if self.alpha is not None and self.lam is not None:
            return f"α={self.alpha:g} · λ={self.lam:g}"
        return "α/λ per fold: " + " ".join(f"{f.alpha:g}/{f.lam:g}" for f in self.folds)


def _undefined(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _common(values: Iterable[float]) -> float | None:
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def best_setting(values: Mapping[Setting, float]) -> Setting:
    """The setting of highest value by the tie rule (``tie_rule.best``: of equal values, the least |α|, then the
    smaller λ, then the smaller α). An undefined value (NaN) never wins; a criterion undefined at every setting is
    an error."""
    found = tie_rule.best((setting, value, (setting[0],), setting[1]) for setting, value in values.items())
    if found is None:
        raise UserError(
            "selection: the criterion is undefined at every setting considered (see the log for why): "
            "give more queries or α values, or choose another selection.method"
        )
    return found


def combine_folds(folds: Sequence[Fold], runs: Sequence[Run]) -> Run:
    """One run of a split from each fold's run (``runs[i]`` made at ``folds[i]``'s setting): each fold's queries
    from its own run (a fold of None queries: all of them)."""
    combined: Run = {}
    for fold, run in zip(folds, runs, strict=True):
        combined.update(run if fold.queries is None else {q: run[q] for q in fold.queries if q in run})
    return combined


def evaluate_choice(
    pipeline: Pipeline,
    split: str,
    systems: Sequence[str],
    choice: Choice,
    measures: Sequence[str],
    runs_dir: Path | None = None,
):
    """means[system][measure] and per_query[system][measure][query] of ``split``, each fold's queries run at
    its setting (every system at its λ in the fold, Θ' at the fold's α); TREC runs into ``runs_dir``."""
    qrels = pipeline.split(split).qrels
    means, per_query = {}, {}
    for system in systems:
        fold_runs = [
            pipeline.system_run(split, system, lam, pipeline.spec.merge.at(fold.alpha))
            for fold, lam in zip(choice.folds, choice.lambdas(system), strict=True)
        ]
        run = combine_folds(choice.folds, fold_runs)
        if runs_dir is not None:
            evaluation.save_trec_run(run, runs_dir / f"{split}.{system}.trec", system)
        means[system], per_query[system] = evaluation.evaluate_run(qrels, run, measures)
    return means, per_query


def curve_plot(choice: Choice, path: Path, title: str):
    """The criterion against α at each fold's chosen λ, the chosen α marked (unclipped); ``title``: what was
    measured (``plots.heading``). Returns the figure."""
    fig, ax = plots.subplots(figsize=(6.5, 4.5))
    for index, fold in enumerate(choice.folds):
        key = index if choice.method == "cross_validation" else None
        rows = sorted((r for r in choice.curve if r["fold"] == key and r["lam"] == fold.lam), key=lambda r: r["alpha"])
        points = [(r["alpha"], r["value"]) for r in rows]
        lam = "no fusion" if fold.lam is None else f"λ = {fold.lam:g}"
        label = f"fold {index + 1}, {lam}" if key is not None else lam
        (line,) = ax.plot(*zip(*points, strict=True), marker="o", label=label)
        for column, style in (("raw", "--"), ("null", ":")):  # stability: the two curves the value is the gap of
            if rows and column in rows[0]:
                ax.plot([r["alpha"] for r in rows], [r[column] for r in rows], style, color=line.get_color(),
                        label=f"{column}, {lam}")  # fmt: skip
        chosen = [value for alpha, value in points if alpha == fold.alpha]
        ax.scatter([fold.alpha], chosen, s=160, facecolors="none", edgecolors=line.get_color(), zorder=4, clip_on=False)
    ax.set_xlabel("α")
    ax.set_ylabel(choice.criterion)
    ax.margins(x=0.08, y=0.12)
    ax.set_title(f"{title}\nselection={choice.method} (chosen α circled)")
    ax.legend(loc="best")
    plots.save_figure(fig, path)
    return fig
