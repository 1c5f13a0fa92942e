"""How sure is a selection: its choice rerun on bootstrap resamples of the queries it chose on
(``selection.bootstrap``), each resample's choice evaluated on the test split.

A selection maximises a per-query criterion averaged over its tuning queries (``selection.choice.Evidence``): the
objective on labelled queries (a dev sweep's dev queries; cross-validation's other folds; pseudo-queries) or a
label-free one (stability, NQC) on unlabeled queries. Those per-query values are computed once; a resample
draws the tuning queries with replacement (seeded: ``numpy.random.default_rng``) and chooses again by the same
rule (the highest mean where defined, ties by ``selection.tie_rule``), with no new scoring. Under
cross-validation the evaluated queries are resampled as a whole and each fold chooses on the resample's copies
of its other folds' queries. ΘT's own λ is chosen again on each resample by the same procedure (fixed where the
method cannot choose λ), so that TA's extra tuning is not what makes it win.

Each resample's choice is evaluated on the whole test split (not resampled: the question is how the choice
varies with the queries it was made on) from the per-query test objective at every setting of the grid,
computed once. Reported: the chosen α's distribution (counts of every fold's choice), the regret (the oracle's
test objective minus the choice's), its mean and percentile interval at ``confidence``, and P(TA > ΘT), the share
of resamples whose TA beats ΘT at its own λ on test (a tie is not a win: TA at α = 0 is ΘT). The oracle is one
for every method, so that the regrets of a table's rows compare: the best single setting of the shared grid
(``selection.alphas`` × ``lam.grid``; a sweep's: its trials' α × ``lam.grid``) on the test labels, a labelled upper
bound no selection can use (cross-validation's folds, choosing apart, may beat it: a negative regret).
``regret_reachable`` is against the best setting the method could output: stability's and NQC's α at their fixed
λ; the shared oracle for the others.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import product
from pathlib import Path

import numpy as np

from taskvec_ir.config.composed import Config
from taskvec_ir.config.selection import BootstrapConfig
from taskvec_ir.config.systems import IR_MODEL, TASK_ARITHMETIC
from taskvec_ir.pipeline.pipeline import Pipeline
from taskvec_ir.pipeline.selection.choice import Choice, Evidence, Setting, best_setting
from taskvec_ir.pipeline.selection.methods import labelled_values, unlabeled_split
from taskvec_ir.pipeline.selection.pseudo_queries import pseudo_queries
from taskvec_ir.pipeline.selection.tie_rule import TIE
from taskvec_ir.reporting import plots


@dataclass(frozen=True)
class Problem:
    """What a selection's choice is rerun on: task arithmetic's evidence over the (α, λ) settings, ΘT's over its
    λ (settings (0, λ); one setting where its λ is fixed), the queries each fold is evaluated on (None: all),
    and the per-query test objective of both at every setting of the grid. ``grid``: the shared grid's settings
    (the oracle's); ``reachable``: those the method can output. ``chosen``: the selection's own choice per fold
    (TA's settings, ΘT's λ), which the unresampled rerun must reproduce."""

    method: str
    resampled: str  # what the resamples draw, in words
    evidence: Evidence
    baseline: Evidence
    folds: Sequence[Sequence[str] | None]
    test: Mapping[Setting, Mapping[str, float]]
    test_baseline: Mapping[Setting, Mapping[str, float]]
    chosen: tuple[list[Setting], list[float]]
    grid: Sequence[Setting]
    reachable: Sequence[Setting]


def selection_problem(pipeline: Pipeline, cfg: Config, choice: Choice) -> Problem:
    """A selection job's problem (``selection.methods.choose``'s evidence); ΘT's λ evidence as ``tune_baseline_lambdas``
    makes it: on the same queries (cross-validation, pseudo-queries), or ``selection.lam``."""
    selection, objective, grid = cfg.selection, cfg.objective, list(cfg.lam.grid)
    evidence = choice.evidence
    if choice.method in ("cross_validation", "pseudo_queries"):  # ΘT's λ on the same labelled queries
        cv = choice.method == "cross_validation"
        split = cfg.split if cv else pseudo_queries(pipeline, selection.pseudo_queries)[0]
        values = labelled_values(pipeline, split, IR_MODEL, product([0.0], grid), objective)
        baseline = Evidence(values, evidence.tuning)
        resampled = f"the {len(next(iter(values.values())))} judged {split} queries" if cv else split
    else:  # stability, NQC and entropy fuse every system at selection.lam
        baseline = Evidence({(0.0, selection.lam): {}}, evidence.tuning)
        resampled = f"the {len(evidence.tuning[0])} unlabeled {unlabeled_split(cfg)} queries"
    alphas = sorted(set(selection.alphas))
    lambdas = sorted({*grid, *(lam for _, lam in evidence.values)})  # the grid, and λ where the method fixes it
    # cross-validation's evidence is the test objective itself: the same values
    known = evidence.values if choice.method == "cross_validation" else {}
    test, test_baseline = test_values(pipeline, cfg, alphas, lambdas, known)
    chosen = ([(f.alpha, f.lam) for f in choice.folds], choice.lambdas(IR_MODEL))
    folds = [f.queries for f in choice.folds]
    shared = list(product(alphas, grid))
    reachable = sorted(evidence.values) if choice.method in ("stability", "nqc", "entropy") else shared
    return Problem(choice.method, resampled, evidence, baseline, folds, test, test_baseline, chosen, shared, reachable)


def test_values(
    pipeline: Pipeline,
    cfg: Config,
    alphas: Sequence[float],
    lambdas: Sequence[float],
    known: Mapping[Setting, Mapping[str, float]],
) -> tuple[dict, dict]:
    """TA's per-query test objective at every (α, λ) of the grid and ΘT's at every λ, from cached scores
    (``known``: values already computed)."""
    settings = list(product(alphas, lambdas))
    missing = [s for s in settings if s not in known]
    test = {s: known[s] for s in settings if s in known}
    test.update(labelled_values(pipeline, cfg.split, TASK_ARITHMETIC, missing, cfg.objective))
    test_baseline = labelled_values(pipeline, cfg.split, IR_MODEL, product([0.0], lambdas), cfg.objective)
    return test, test_baseline


def sweep_problem(pipeline: Pipeline, cfg: Config, alphas: Sequence[float], chosen: tuple) -> Problem:
    """A dev sweep's problem, as a selection over the tuning split's judged queries: the α values its trials ran
    × ``lam.grid`` (each trial chose λ from it on the tuning split), ΘT's λ from the same grid on the same
    queries (``system_lambdas``). ``chosen``: the sweep's best setting and ΘT's λ."""
    split, grid, objective = cfg.sweep.tune_split, list(cfg.lam.grid), cfg.objective
    alphas = sorted(set(alphas))
    values = labelled_values(pipeline, split, TASK_ARITHMETIC, product(alphas, grid), objective)
    tuning = [tuple(values[next(iter(values))])]
    baseline = Evidence(labelled_values(pipeline, split, IR_MODEL, product([0.0], grid), objective), tuning)
    test, test_baseline = test_values(pipeline, cfg, alphas, grid, {})
    resampled = f"the {len(tuning[0])} judged {split} queries (the sweep's trials' α × lam.grid)"
    shared = list(product(alphas, grid))
    return Problem(
        "dev", resampled, Evidence(values, tuning), baseline, [None], test, test_baseline, chosen, shared, shared
    )


# -- resampling ----------------------------------------------------------------------------------------------------
def choices(evidence: Evidence, pool: Sequence[str], counts: np.ndarray) -> list[list[Setting | None]]:
    """Each resample's choice in each fold (``counts[b, i]``: copies of ``pool[i]`` in resample b): the setting of
    highest mean over the fold's tuning queries where defined, by a selection's rule (``choice.best_setting``);
    None where no setting is defined for any of the resample's queries."""
    settings = sorted(evidence.values)
    if len(settings) == 1:  # a fixed setting (a λ the method cannot choose)
        return [[settings[0]] * len(evidence.tuning) for _ in range(len(counts))]
    index = {q: i for i, q in enumerate(pool)}
    values = np.full((len(settings), len(pool)), np.nan)
    for s, setting in enumerate(settings):
        for query, value in evidence.values[setting].items():
            if query in index:
                values[s, index[query]] = value
    defined = ~np.isnan(values)
    filled = np.where(defined, values, 0.0)
    chosen = [[None] * len(evidence.tuning) for _ in range(len(counts))]
    for f, tuning in enumerate(evidence.tuning):
        mask = np.zeros(len(pool))
        mask[[index[q] for q in tuning]] = 1.0
        weights = counts * mask
        total, n = weights @ filled.T, weights @ defined.T
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.where(n > 0, total / np.maximum(n, 1), np.nan)
        for b in range(len(counts)):
            if not np.isnan(means[b]).all():
                chosen[b][f] = best_setting(dict(zip(settings, means[b].tolist(), strict=True)))
    return chosen


def fold_values(test: Mapping[Setting, Mapping[str, float]], folds: Sequence[Sequence[str] | None]) -> list[dict]:
    """Per fold, each setting's test objective on the fold's judged queries."""
    found = []
    for fold in folds:
        members = None if fold is None else set(fold)
        found.append(
            {s: [v for q, v in values.items() if members is None or q in members] for s, values in test.items()}
        )
    return found


def resample(problem: Problem, settings: BootstrapConfig) -> dict:
    """The bootstrap of ``problem`` (see the module docstring), as ``selection_bootstrap.json`` holds it."""
    pool = sorted({q for tuning in problem.evidence.tuning for q in tuning})
    rng = np.random.default_rng(settings.seed)
    draws = rng.integers(0, len(pool), size=(settings.resamples, len(pool)))
    counts = np.stack([np.bincount(row, minlength=len(pool)) for row in draws]).astype(float)
    counts = np.vstack([np.ones(len(pool)), counts])  # row 0: the queries as they are (the selection's own choice)
    ta, base = choices(problem.evidence, pool, counts), choices(problem.baseline, pool, counts)
    queries = len(next(iter(problem.test.values())))  # the judged test queries the objective averages over
    ta_values = fold_values(problem.test, problem.folds)
    base_values = fold_values(problem.test_baseline, problem.folds)

    def test_value(values, chosen):  # exactly rounded: the folds all at one setting give that setting's mean
        return math.fsum(v for fold, s in zip(values, chosen, strict=True) for v in fold[s]) / queries

    means = {s: math.fsum(values.values()) / queries for s, values in problem.test.items()}
    oracle = best_setting({s: means[s] for s in problem.grid})
    reachable = best_setting({s: means[s] for s in problem.reachable})
    oracle_value, reachable_value = means[oracle], means[reachable]

    draws_out, undefined = [], 0
    for b in range(1, len(counts)):
        if None in ta[b]:
            undefined += 1
            continue
        value, baseline_value = test_value(ta_values, ta[b]), test_value(base_values, base[b])
        draws_out.append(
            {
                "settings": [list(s) for s in ta[b]],
                "lam[ir_model]": [lam for _, lam in base[b]],
                "test": value,
                "test[ir_model]": baseline_value,
                "regret": oracle_value - value,
                "regret_reachable": reachable_value - value,
                "beats_ir_model": value - baseline_value > TIE,  # a tie is not a win
            }
        )
    chosen_alphas = Counter(s[0] for draw in draws_out for s in draw["settings"])
    tail = (1 - settings.confidence) / 2

    def interval(key: str) -> dict:
        regrets = np.array([draw[key] for draw in draws_out])
        if not len(regrets):
            return dict.fromkeys(("mean", "low", "high"))
        return {
            "mean": float(regrets.mean()),
            "low": float(np.quantile(regrets, tail)),
            "high": float(np.quantile(regrets, 1 - tail)),
        }

    # the modal α: of α chosen equally often, the one the tie rule prefers
    modal = best_setting({(a, None): n for a, n in chosen_alphas.items()})[0] if chosen_alphas else None
    unresampled = {"settings": [list(s) for s in ta[0]], "lam[ir_model]": [lam for _, lam in base[0]]}
    expected = {"settings": [list(s) for s in problem.chosen[0]], "lam[ir_model]": list(problem.chosen[1])}
    return {
        "method": problem.method,
        "resampled": problem.resampled,
        "queries": len(pool),
        "resamples": settings.resamples,
        "seed": settings.seed,
        "confidence": settings.confidence,
        "test_queries": queries,
        "grid": {"alphas": sorted({a for a, _ in problem.test}), "lams": sorted({lam for _, lam in problem.test})},
        "choice": {
            **unresampled,
            "test": test_value(ta_values, ta[0]),
            "test[ir_model]": test_value(base_values, base[0]),
        },
        # the rerun on the queries as they are is the job's choice ("tie": one of equal criterion, e.g. a sweep's
        # best trial, which Optuna takes in trial order among equals)
        "matches_selection": True if unresampled == expected else "tie" if _ties(problem, ta[0], base[0]) else False,
        "oracle": {"setting": list(oracle), "test": oracle_value},  # the shared grid's best on test
        "oracle_reachable": {"setting": list(reachable), "test": reachable_value},  # the best the method can output
        "alpha_counts": {f"{a:g}": chosen_alphas[a] for a in sorted(chosen_alphas)},
        "choices_per_resample": len(problem.folds),
        "modal_alpha": modal,
        "modal_share": chosen_alphas[modal] / sum(chosen_alphas.values()) if modal is not None else None,
        "regret": interval("regret"),
        "regret_reachable": interval("regret_reachable"),
        "p_beats_ir_model": float(np.mean([d["beats_ir_model"] for d in draws_out])) if draws_out else None,
        "undefined_resamples": undefined,  # resamples of queries where the criterion is undefined at every setting
        "draws": draws_out,
    }


def describe(result: Mapping, objective: str) -> str:
    """One line: how sure the choice is."""
    regret, reachable = result["regret"], result["regret_reachable"]
    if result["modal_alpha"] is None:
        return f"Bootstrap ({result['resamples']} resamples): the criterion was undefined on every resample"
    also = (
        f", against the best it could output {reachable['mean']:.4f} [{reachable['low']:.4f}, {reachable['high']:.4f}]"
        if result["oracle_reachable"] != result["oracle"]
        else ""
    )
    return (
        f"Bootstrap ({result['resamples']} resamples of {result['resampled']}): α = {result['modal_alpha']:g} in "
        f"{100 * result['modal_share']:.0f}% of choices; regret (test {objective}, against the grid's best single "
        f"setting on test) {regret['mean']:.4f} [{regret['low']:.4f}, {regret['high']:.4f}]{also} "
        f"({100 * result['confidence']:g}%); P(TA > ΘT) = {result['p_beats_ir_model']:.2f}"
    )


def _criterion(evidence: Evidence, fold: int, setting: Setting) -> float:
    """``setting``'s criterion in ``fold`` on the queries as they are (NaN: undefined)."""
    by_query = evidence.values.get(setting, {})
    values = [by_query[q] for q in evidence.tuning[fold] if q in by_query]
    return math.fsum(values) / len(values) if values else math.nan


def _equal(first: float, second: float) -> bool:
    """Equal as the tie rule counts equal (both undefined, or within ``TIE``)."""
    return (math.isnan(first) and math.isnan(second)) or abs(first - second) <= TIE


def _ties(problem: Problem, settings: Sequence[Setting], lambdas: Sequence[Setting]) -> bool:
    """Whether the selection's own choice (TA's settings, ΘT's λ) is, fold by fold, as good by the criterion as
    the rerun's."""
    chosen, baseline_lambdas = problem.chosen
    pairs = [(problem.evidence, settings, chosen)]
    if len(problem.baseline.values) > 1:  # ΘT's λ chosen too (a fixed λ is the same in both)
        pairs.append((problem.baseline, lambdas, [(0.0, lam) for lam in baseline_lambdas]))
    return all(
        len(rerun) == len(own)
        and all(
            _equal(_criterion(e, f, a), _criterion(e, f, b)) for f, (a, b) in enumerate(zip(rerun, own, strict=True))
        )
        for e, rerun, own in pairs
    )


def summary(result: Mapping) -> dict:
    """The W&B summary values of a bootstrap."""
    regret, reachable = result["regret"], result["regret_reachable"]
    return {
        "bootstrap/resamples": result["resamples"],
        "bootstrap/modal_alpha": result["modal_alpha"],
        "bootstrap/modal_share": result["modal_share"],
        "bootstrap/regret_mean": regret["mean"],
        "bootstrap/regret_low": regret["low"],
        "bootstrap/regret_high": regret["high"],
        "bootstrap/regret_reachable_mean": reachable["mean"],
        "bootstrap/regret_reachable_low": reachable["low"],
        "bootstrap/regret_reachable_high": reachable["high"],
        "bootstrap/p_beats_ir_model": result["p_beats_ir_model"],
        "bootstrap/oracle": result["oracle"]["test"],
        "bootstrap/oracle_reachable": result["oracle_reachable"]["test"],
    }


def draws_table(result: Mapping) -> tuple[list[str], list[list]]:
    """One row per resample (columns, rows) for W&B: the folds' α/λ, ΘT's λ, the test objective and regrets."""
    columns = ["resample", "alpha", "lam", "lam[ir_model]", "test", "test[ir_model]", "regret", "regret_reachable"]
    columns.append("beats_ir_model")
    rows = [
        [
            b,
            " ".join(f"{a:g}" for a, _ in draw["settings"]),
            " ".join(f"{lam:g}" for _, lam in draw["settings"]),
            " ".join(f"{lam:g}" for lam in draw["lam[ir_model]"]),
            draw["test"],
            draw["test[ir_model]"],
            draw["regret"],
            draw["regret_reachable"],
            draw["beats_ir_model"],
        ]
        for b, draw in enumerate(result["draws"])
    ]
    return columns, rows


def plot(result: Mapping, objective: str, path: Path) -> None:
    """Two panels: how often each α was chosen, and the regret's distribution with its mean and interval."""
    fig, (left, right) = plots.subplots(1, 2, figsize=(10, 4))
    alphas = list(result["alpha_counts"])
    left.bar(alphas, [result["alpha_counts"][a] for a in alphas], color="tab:blue")
    left.set_xlabel("chosen α")
    left.set_ylabel("choices" + (" (every fold's)" if result["choices_per_resample"] > 1 else ""))
    left.set_title(f"selection={result['method']}: {result['resamples']} resamples")
    regrets = [draw["regret"] for draw in result["draws"]]
    right.hist(regrets, bins=20, color="tab:orange")
    regret = result["regret"]
    if regret["mean"] is not None:
        right.axvline(regret["mean"], color="black", label=f"mean {regret['mean']:.4f}")
        for bound in (regret["low"], regret["high"]):
            right.axvline(bound, color="black", linestyle="--")
    right.set_xlabel(f"regret: the grid's best single setting − chosen, test {objective}")
    share = "–" if result["p_beats_ir_model"] is None else f"{result['p_beats_ir_model']:.2f}"
    right.set_title(f"{100 * result['confidence']:g}% interval dashed; P(TA > ΘT) = {share}")
    right.legend(loc="best")
    plots.save_figure(fig, path)
