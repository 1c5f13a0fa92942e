"""The plots of a sweep's report (the tuning objective against each swept key, a Pareto sweep's front, ‖τ‖ per
layer), and what every plot of the package shares: one style (``subplots``), a title that says what was measured
(``heading``) and one atomic PNG write (``save_figure``). Each plot function returns the figure it wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from taskvec_ir.storage.outputs import atomic_path

# The one style of every plot: matplotlib's defaults, with a light grid, smaller legends and titles.
STYLE = {
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.titlesize": "medium",
    "figure.titlesize": "medium",
    "legend.fontsize": "small",
    "legend.framealpha": 0.8,
    "figure.dpi": 120,
}
# What a swept key is called on an axis (others: their key).
AXIS_LABELS = {"alpha.value": "α", "lam": "λ (BM25 weight)", "lam.value": "λ (BM25 weight)"}
REFERENCE_STYLES = {"BM25": {"color": "grey", "linestyle": "--"}, "ΘT": {"color": "black", "linestyle": ":"}}


def subplots(*args, **kwargs):
    """``matplotlib.pyplot.subplots`` in the package's ``STYLE`` (matplotlib is imported here, when a plot is made:
    a job without one does not pay for it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matplotlib.rcParams.update(STYLE)
    return plt.subplots(*args, **kwargs)


def heading(dataset: str, model: str, split: str, queries: int | None) -> str:
    """A plot's title: ``scifact dev (40 queries) · minilm_demo``."""
    return f"{dataset} {split}" + (f" ({queries} queries)" if queries is not None else "") + f" · {model}"


def axis_label(key: str) -> str:
    """``α`` for alpha.value, ``α[name]`` for alpha.extra.<name>, ``λ (BM25 weight)`` for λ; else the key."""
    if key.startswith("alpha.extra."):
        return f"α[{key.removeprefix('alpha.extra.')}]"
    return AXIS_LABELS.get(key, key)


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


def sensitivity_plot(
    trials: Sequence[Mapping],
    path: Path,
    objective: str,
    best_trial: int,
    title: str,
    references: Mapping[str, float],
):
    """One panel per swept key (and λ): the tuning objective of every completed trial against that key's value,
    the chosen trial circled (drawn unclipped, inside margins wide enough for its circle), and ``references`` (e.g.
    BM25 and ΘT on the tuning split) as horizontal lines; ``title``: what was measured (``heading``)."""
    columns, rows = sensitivity(trials)
    panels = [c for c in columns[3:] if all(isinstance(r[columns.index(c)], int | float) for r in rows)] + ["lam"]
    fig, axes = subplots(1, len(panels), figsize=(4.5 * len(panels), 4.2), squeeze=False)
    for ax, key in zip(axes[0], panels, strict=True):
        x, y = [r[columns.index(key)] for r in rows], [r[1] for r in rows]
        colour = {"c": [r[2] for r in rows], "cmap": "viridis", "vmin": 0, "vmax": 1} if key != "lam" else {}
        points = ax.scatter(x, y, zorder=3, label="trials", **colour)
        best = [r for r in rows if r[0] == best_trial]
        ax.scatter(
            [r[columns.index(key)] for r in best],
            [r[1] for r in best],
            s=160,
            facecolors="none",
            edgecolors="red",
            zorder=4,
            clip_on=False,
            label="chosen",
        )
        for name, value in references.items():
            ax.axhline(value, label=f"{name}: {value:.4f}", **REFERENCE_STYLES.get(name, {}))
        ax.margins(x=0.1, y=0.12)
        ax.set_xlabel(axis_label(key))
        ax.set_ylabel(f"{objective} on the tuning split")
        ax.legend(loc="best")
        if colour and key == panels[0]:
            fig.colorbar(points, ax=ax, label=axis_label("lam"))
    fig.suptitle(title)
    save_figure(fig, path)
    return fig


def pareto_plot(rows: Sequence[Mapping], path: Path, objective: str, general: str, bound: float) -> None:
    """A Pareto sweep's trials (``runs.sweeping.pareto.trial_rows``): the tuning measure against the retention on
    the general collection, the front joined as a staircase, the retention bound as a line, the chosen trial
    circled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.5, 4.5))
    others = [r for r in rows if not r["front"]]
    ax.scatter([r["objective"] for r in others], [r["retention"] for r in others], c="0.6", label="trial", zorder=3)
    front = sorted((r for r in rows if r["front"]), key=lambda r: r["objective"])
    ax.plot(
        [r["objective"] for r in front],
        [r["retention"] for r in front],
        "o-",
        drawstyle="steps-pre",  # the edge of what the front dominates (below and left)
        color="tab:blue",
        label="Pareto front",
        zorder=4,
    )
    for r in front:
        if r["alpha"] is not None:
            ax.annotate(f"α={r['alpha']:.2g}", (r["objective"], r["retention"]), fontsize=7, xytext=(3, 3),
                        textcoords="offset points")  # fmt: skip
    ax.axhline(-bound, color="tab:orange", linestyle="--", label=f"retention bound (−{bound:g})")
    chosen = [r for r in rows if r["chosen"]]
    ax.scatter([r["objective"] for r in chosen], [r["retention"] for r in chosen], s=180, facecolors="none",
               edgecolors="red", label="chosen", zorder=5)  # fmt: skip
    ax.set_xlabel(f"{objective} on the tuning split")
    ax.set_ylabel(f"retention: Δ {objective} against ΘT on {general}")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize=8)  # outside: the trials fill any corner
    save_figure(fig, path)


def layer_norms_plot(diagnostics: Mapping, path: Path) -> None:
    """‖τ‖ per layer of each task vector (``Pipeline.merge_diagnostics``), as grouped bars."""
    vectors = diagnostics["vectors"]
    layers = list(dict.fromkeys(layer for stats in vectors.values() for layer in stats["layer_norms"]))
    width = 0.8 / len(vectors)
    fig, ax = subplots(figsize=(max(6, 0.45 * len(layers) + 2), 4))
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
    ax.grid(axis="x", visible=False)
    ax.legend()
    save_figure(fig, path)
    return fig


def save_figure(fig, path: Path) -> None:
    """Write ``fig`` as a PNG, atomically (a plot is never half written), and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
    plt.close(fig)
