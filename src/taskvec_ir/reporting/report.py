"""The final results of a sweep: significance against baselines, tables (Markdown, LaTeX), the α plot.

Significance follows the paper by default: a paired t-test per measure between task arithmetic and each
baseline over the test queries, Bonferroni-corrected for the number of baselines compared. ``significance.test``
may instead be Fisher's paired randomization test, and ``significance.correction`` Holm's step-down
(``taskvec_ir.config.schema.SignificanceConfig``); a table of cells (``taskvec_ir.runs.table``) tests the same way.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import MARKS, System
from taskvec_ir.reporting import tables
from taskvec_ir.storage.outputs import atomic_path

PerQuery = Mapping[str, Mapping[str, Mapping[str, float]]]  # system -> measure -> query_id -> value
Key = TypeVar("Key", bound=Hashable)


def p_value(ours: Sequence[float], theirs: Sequence[float], settings: SignificanceConfig) -> float:
    """The two-sided p-value of a paired test of ``ours`` against ``theirs`` (the same queries, in order):
    the paired t-test, or Fisher's randomization test of the mean difference (each query's pair swapped at
    random, ``settings.permutations`` times, seeded; every swap when 2^queries is fewer). Identical values
    give no evidence of a difference: 1."""
    import numpy as np
    from scipy.stats import permutation_test, ttest_rel

    if settings.test == "t_test":
        p = float(ttest_rel(ours, theirs).pvalue)
    else:
        p = permutation_test(
            (np.asarray(ours, dtype=float), np.asarray(theirs, dtype=float)),
            lambda x, y, axis: np.mean(x - y, axis=axis),
            permutation_type="samples",
            vectorized=True,
            n_resamples=settings.permutations,
            alternative="two-sided",
            rng=settings.seed,
        ).pvalue
    return 1.0 if math.isnan(p) else min(1.0, float(p))  # scipy's t-test gives nan where every difference is 0


def adjust(p_values: Mapping[Key, float], correction: str) -> dict[Key, float]:
    """One family of p-values adjusted for its number of tests m: Bonferroni (p·m) or Holm's step-down (the i-th
    smallest times m − i + 1, never below the adjusted one before it), each at most 1."""
    m = len(p_values)
    if correction == "bonferroni":
        return {key: min(1.0, p * m) for key, p in p_values.items()}
    adjusted, running = {}, 0.0
    for i, (key, p) in enumerate(sorted(p_values.items(), key=lambda item: item[1])):
        running = max(running, min(1.0, (m - i) * p))
        adjusted[key] = running
    return {key: adjusted[key] for key in p_values}


def adjust_table(p_values: Mapping[tuple[int, str, str], float], correction: str) -> dict[tuple[int, str, str], float]:
    """A table's p-values, keyed (row, baseline, measure), adjusted: Bonferroni within each row and measure (over
    the row's baselines, as the paper), or Holm over all of a measure's tests in the table."""
    families: dict[tuple, dict] = {}
    for key, p in p_values.items():
        row, _, measure = key
        families.setdefault((measure,) if correction == "holm" else (row, measure), {})[key] = p
    return {key: p for family in families.values() for key, p in adjust(family, correction).items()}


def significance(
    per_query: PerQuery, system: str, baselines: Sequence[str], measures: Sequence[str], settings: SignificanceConfig
) -> dict[str, dict[str, float]]:
    """Unadjusted p-values of ``system`` against each baseline over the queries of ``system``'s results:
    p[baseline][measure]."""
    found: dict[str, dict[str, float]] = {baseline: {} for baseline in baselines}
    for measure in measures:
        queries = sorted(per_query[system][measure])
        ours = [per_query[system][measure][q] for q in queries]
        for baseline in baselines:
            theirs = [per_query[baseline][measure][q] for q in queries]
            found[baseline][measure] = p_value(ours, theirs, settings)
    return found


def report_significance(
    per_query: PerQuery, system: str, baselines: Sequence[str], measures: Sequence[str], settings: SignificanceConfig
) -> dict[str, dict[str, float]]:
    """A sweep's report: ``system`` against each baseline, adjusted per measure over the baselines (for one row,
    Bonferroni over the row's baselines and Holm over the table's tests have the same family)."""
    raw = significance(per_query, system, baselines, measures, settings)
    adjusted = {m: adjust({b: raw[b][m] for b in baselines}, settings.correction) for m in measures}
    return {b: {m: adjusted[m][b] for m in measures} for b in baselines}


def results_table(
    means: Mapping,
    p_values: Mapping,
    system: str,
    measures: Sequence[str],
    settings: SignificanceConfig,
    lams: Mapping[str, float | None],
) -> tables.Table:
    """Each system's λ and mean of each measure; ``system``'s values carry the marks of the baselines (``p_values``'
    keys) it is significantly better or worse than."""
    symbols = {baseline: MARKS[baseline] for baseline in p_values}
    rows = [
        [
            System(name).heading,
            "–" if lams.get(name) is None else f"{lams[name]:g}",
            *(
                tables.Entry(
                    values[m],
                    tables.marks(
                        {b: p[m] for b, p in p_values.items()}, {b: values[m] - means[b][m] for b in p_values}, symbols
                    ),
                )
                if name == system
                else tables.Entry(values[m])
                for m in measures
            ),
        ]
        for name, values in means.items()
    ]
    footnote = f"Marks on {System(system).heading}: " + tables.significance_note(
        symbols, settings, "per measure" if settings.correction == "holm" else f"over {len(p_values)} baselines"
    )
    if any(lam is not None for lam in lams.values()):
        footnote += " λ: the BM25 weight each fused system ran at (each baseline's own, where λ was tuned)."
    else:  # retriever=dense: "–" everywhere, and why
        footnote += " No fusion (retriever=dense): each model system ranks the whole corpus by its own embeddings."
    return tables.Table(["system", "λ", *measures], rows, labels=2, footnote=footnote)


def sensitivity(trials: Sequence[Mapping]) -> tuple[list[str], list[list]]:
    """The tuning objective of every completed trial against each key the sweep set, and λ: (columns, rows)
    with columns ``trial``, ``objective``, ``lam``, then the swept keys (``alpha.value``, ``alpha.extra.<name>``,
    ``alpha.schedule.first``, ...). ``trials`` holds each trial's ``number``, ``value``, ``lam`` and ``params``."""
    keys = sorted({key for trial in trials for key in trial["params"]} - {"lam.value"})
    rows = [
        [t["number"], t["value"], t["lam"], *(t["params"].get(key) for key in keys)]
        for t in sorted(trials, key=lambda t: t["number"])
    ]
    return ["trial", "objective", "lam", *keys], rows


def sensitivity_plot(trials: Sequence[Mapping], path: Path, objective: str, best_trial: int) -> None:
    """One panel per swept key (and λ): the tuning objective of every completed trial against that key's value,
    the chosen trial circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns, rows = sensitivity(trials)
    panels = [c for c in columns[3:] if all(isinstance(r[columns.index(c)], int | float) for r in rows)] + ["lam"]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.5 * len(panels), 3.8), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        x, y = [r[columns.index(key)] for r in rows], [r[1] for r in rows]
        colour = {"c": [r[2] for r in rows], "cmap": "viridis", "vmin": 0, "vmax": 1} if key != "lam" else {}
        points = ax.scatter(x, y, zorder=3, **colour)
        best = [r for r in rows if r[0] == best_trial]
        ax.scatter(
            [r[columns.index(key)] for r in best],
            [r[1] for r in best],
            s=160,
            facecolors="none",
            edgecolors="red",
            zorder=4,
            label="chosen",
        )
        ax.set_xlabel("λ (BM25 weight)" if key == "lam" else key)
        ax.set_ylabel(f"{objective} on the tuning split")
        ax.grid(alpha=0.3)
        ax.legend(loc="best")
        if colour and key == panels[0]:
            fig.colorbar(points, ax=ax, label="λ (BM25 weight)")
    save_figure(fig, path)


def layer_norms_plot(diagnostics: Mapping, path: Path) -> None:
    """‖τ‖ per layer of each task vector (``Experiment.merge_diagnostics``), as grouped bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    vectors = diagnostics["vectors"]
    layers = list(dict.fromkeys(layer for stats in vectors.values() for layer in stats["layer_norms"]))
    width = 0.8 / len(vectors)
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(layers) + 2), 4))
    for i, (vector, stats) in enumerate(vectors.items()):
        ax.bar(
            [x + i * width for x in range(len(layers))],
            [stats["layer_norms"].get(layer, 0.0) for layer in layers],
            width,
            label=f"{vector} (‖τ‖/‖ΘT‖ = {stats['norm_ratio']:.3g})",
        )
    ax.set_xticks([x + width * (len(vectors) - 1) / 2 for x in range(len(layers))], layers)
    ax.set_xlabel("layer (other: embeddings and heads)")
    ax.set_ylabel("‖τ‖ (L2 norm)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend()
    save_figure(fig, path)


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as a PNG, atomically (a plot is never half written), and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
