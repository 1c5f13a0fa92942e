"""The sections of a table of cells beyond its results: the analyses its jobs ran (``analyses``: where τ helps, the
re-ranking depth) and how sure each selection is (``selection.bootstrap``), each as table.csv columns on task
arithmetic's rows and a table of its own.
"""

from __future__ import annotations

from collections.abc import Mapping

from taskvec_ir.config.systems import TASK_ARITHMETIC
from taskvec_ir.config.table import PARETO_SELECTION
from taskvec_ir.reporting.rendering import Entry, Table, markdown
from taskvec_ir.reporting.results_tables import selection_label


def analysis_columns(analysed: Mapping | None) -> dict:
    """A job's ``analyses`` (its ``metrics.json``) as flat table.csv columns: ``alpha_response/...`` (ΘT, the chosen
    α, the oracle α's upper bound, the shares helped, hurt and unchanged, and the sign test's p),
    ``depth/<k>/...`` (the objective, the share of the gain over BM25 kept, seconds per query measured) and
    ``effect_split/<α>/<λ>/...`` (Δ against ΘT dense, re-ranked by the model alone and fused, and the shares the
    candidate set and fusion take)."""
    columns: dict = {}
    response = (analysed or {}).get("alpha_response")
    if response:
        keys = ("ir_model", "chosen", "oracle", "helped", "hurt", "unchanged", "sign_p")
        columns.update({f"alpha_response/{key}": response.get(key) for key in keys})  # sign_p: not in older jobs
    depth = (analysed or {}).get("depth")
    for row in depth["depths"] if depth else []:
        for key in (depth["measure"], "gain_kept", "seconds_per_query"):
            columns[f"depth/{row['depth']}/{key}"] = row[key]
    split = (analysed or {}).get("effect_split")
    for row in split["deltas"] if split else []:
        for key in EFFECT_SPLIT_KEYS:
            columns[f"effect_split/{row['alpha']:g}/{row['lam']:g}/{key}"] = row[key]
    return columns


def analysis_sections(rows: list[dict], measure: str) -> str:
    """table.md's sections of the analyses its jobs ran (task arithmetic's rows that have their columns)."""
    found = [r for r in rows if r["system"] == TASK_ARITHMETIC and not r["failed"]]
    sections = {
        "Where does τ help: per-query α response": _alpha_response_table(found, measure),
        f"Re-ranking depth: {measure} and its cost": _depth_table(found, measure),
        "Where τ's effect goes: dense, re-ranked, fused": _effect_split_table(found, measure),
    }
    return "".join(f"\n### {title}\n\n{markdown(table)}" for title, table in sections.items() if table.rows)


_ANALYSIS_LABELS = ["dataset", "model", "merge", "selection"]


def _alpha_response_table(rows: list[dict], measure: str) -> Table:
    """Per row: ΘT, the chosen α and the oracle α's mean, the shares of queries helped, hurt and unchanged, and
    the sign test's p of helped against hurt."""
    body = [
        [
            *(r[key] for key in _ANALYSIS_LABELS),
            *(Entry(r[f"alpha_response/{key}"]) for key in ("ir_model", "chosen", "oracle")),
            *(f"{100 * r[f'alpha_response/{key}']:.0f}%" for key in ("helped", "hurt", "unchanged")),
            f"{r['alpha_response/sign_p']:.2g}" if r.get("alpha_response/sign_p") is not None else "–",
        ]
        for r in rows
        if r.get("alpha_response/oracle") is not None
    ]
    return Table(
        [
            *_ANALYSIS_LABELS,
            "ΘT",
            "TA (chosen α)",
            "oracle α (upper bound)",
            "helped",
            "hurt",
            "unchanged",
            "sign test p",
        ],  # fmt: skip
        body,
        labels=len(_ANALYSIS_LABELS),
        footnote=f"{measure} of task arithmetic at each row's λ. Oracle α: each query's best α of the grid, chosen "
        "with its own test labels: an upper bound no selection can reach. Helped / hurt / unchanged: queries whose "
        f"{measure} the chosen α raises / lowers / leaves within analysis.unchanged_within of ΘT's. Sign test p: "
        "two-sided binomial test (p = 0.5) of the queries helped against those hurt, unchanged ones left out; "
        "uncorrected.",
    )


def _depth_table(rows: list[dict], measure: str) -> Table:
    """Per row: ``measure`` at each re-ranking depth, with the share of the gain over BM25 kept and seconds/query."""
    depths = sorted({int(key.split("/")[1]) for r in rows for key, value in r.items()
                     if key.startswith("depth/") and value is not None})  # fmt: skip
    body = []
    for r in rows:
        entries = []
        for k in depths:
            value, kept, seconds = (r.get(f"depth/{k}/{key}") for key in (measure, "gain_kept", "seconds_per_query"))
            share = "no gain" if kept is None else f"{100 * kept:.0f}% of gain"  # none: TA not above BM25 at top_k
            notes = [share if value is not None else "", f"{seconds:.2g} s/q" if seconds else ""]
            entries.append(Entry(value, note=", ".join(note for note in notes if note)))
        if any(entry.value is not None for entry in entries):
            body.append([*(r[key] for key in _ANALYSIS_LABELS), *entries])
    return Table(
        [*_ANALYSIS_LABELS, *(f"k={k}" for k in depths)],
        body,
        labels=len(_ANALYSIS_LABELS),
        footnote=f"{measure} of task arithmetic at the row's setting when only BM25's top k are re-ranked (the others "
        "follow in BM25's order); the share of its gain over BM25 at the deepest k that k keeps (no gain: TA not above "
        "BM25 there); seconds per query measured for scoring k pairs.",
    )


EFFECT_SPLIT_KEYS = ("dense", "reranked", "fused", "candidates", "fusion", "kept")  # a row of its deltas


def _effect_split_table(rows: list[dict], measure: str) -> Table:
    """Per row, α and λ: Δ against ΘT dense, re-ranked by the model alone and fused, and the shares taken."""
    found = {tuple(key.split("/")[1:3]) for r in rows for key, value in r.items()
             if key.startswith("effect_split/") and value is not None}  # fmt: skip
    settings = sorted(found, key=lambda setting: tuple(map(float, setting)))
    body = []
    for r in rows:
        for alpha, lam in settings:
            found = {key: r.get(f"effect_split/{alpha}/{lam}/{key}") for key in EFFECT_SPLIT_KEYS}
            if found["dense"] is None:
                continue
            taken = ["–" if found[key] is None else f"{100 * found[key]:.0f}%" for key in EFFECT_SPLIT_KEYS[3:]]
            body.append([*(r[key] for key in _ANALYSIS_LABELS), alpha, lam,
                         *(f"{found[key]:+.4f}" for key in EFFECT_SPLIT_KEYS[:3]), *taken])  # fmt: skip
    return Table(
        [
            *_ANALYSIS_LABELS,
            "α",
            "λ",
            "Δ dense",
            "Δ re-ranked (model alone)",
            "Δ fused",
            "candidate set takes",
            "fusion takes",
            "left",
        ],  # fmt: skip
        body,
        labels=len(_ANALYSIS_LABELS),
        footnote=f"Δ {measure}: task arithmetic at α less ΘT, on the same queries three ways: ranking the whole "
        "corpus by embeddings (retriever=dense), re-ranking BM25's top k by the model alone (λ = 0), and re-ranked "
        "then fused with BM25 at λ. The candidate set takes (Δ dense − Δ re-ranked) / Δ dense of the dense effect, "
        "fusion (Δ re-ranked − Δ fused) / Δ dense; what is left is Δ fused / Δ dense (– where Δ dense is 0).",
    )


def pareto_table(rows: list[dict], measure: str) -> Table:
    """Per cell with a Pareto row (``table.pareto``): the dev row's α and retention beside the Pareto row's, and
    what the bound cost on the target's test queries."""
    ta = {(r["dataset"], r["model"], r["merge"], r["selection"]): r for r in rows if r["system"] == TASK_ARITHMETIC}
    body = []
    for (dataset, model, merge, selection), pareto in ta.items():
        dev = ta.get((dataset, model, merge, "dev"))
        if selection != PARETO_SELECTION or pareto["failed"] or dev is None or dev["failed"]:
            continue
        retention = [_signed(r["retention"]) for r in (dev, pareto)]
        body.append(
            [dataset, model, merge, f"{dev['alpha']:.2g}", retention[0], f"{pareto['alpha']:.2g}", retention[1],
             Entry(dev[measure]), Entry(pareto[measure]), f"{pareto[measure] - dev[measure]:+.4f}"]
        )  # fmt: skip
    on = " / ".join(dict.fromkeys(r["retention_on"] for r in ta.values() if r.get("retention_on")))
    return Table(
        [
            "dataset",
            "model",
            "merge",
            "α (dev row)",
            "retention",
            "α (Pareto row)",
            "retention",
            f"test {measure} (dev row)",
            f"test {measure} (Pareto row)",
            "Δ",
        ],  # fmt: skip
        body,
        labels=7,
        footnote=f"Retention: TA's {measure} on {on} minus ΘT's, at the trial's λ, as the cell's Pareto study measured "
        "it at each row's α (the same grid as the dev sweep's). The Pareto row gives up dev score for retention "
        f"only where the dev row's α loses more than the bound. Δ: the Pareto row's test {measure} on the target minus "
        "the dev row's.",
    )


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.4f}"


BOOTSTRAP_COLUMNS = (
    "modal_alpha",
    "modal_alpha_share",
    "regret_mean",
    "regret_low",
    "regret_high",
    "regret_reachable_mean",
    "regret_reachable_low",
    "regret_reachable_high",
    "p_beats_ir_model",
)
_BOUNDS = ("mean", "low", "high")  # of each regret's interval


def bootstrap_columns(result: Mapping | None) -> dict:
    """table.csv's bootstrap columns from a job's ``selection_bootstrap.json`` (None: no values)."""
    if result is None:
        return dict.fromkeys(BOOTSTRAP_COLUMNS)
    regret, reachable = result["regret"], result["regret_reachable"]
    values = (result["modal_alpha"], result["modal_share"], *(r[k] for r in (regret, reachable) for k in _BOUNDS))
    return dict(zip(BOOTSTRAP_COLUMNS, (*values, result["p_beats_ir_model"]), strict=True))


def bootstrap_table(rows: list[dict], measure: str, confidence: float, resamples: int) -> Table:
    """Per (cell, selection) with a bootstrap, on task arithmetic's row: the modal α and its share of the choices,
    the regret's mean and percentile interval against the shared grid's best single setting and against the best
    the method could output, and P(TA > ΘT)."""
    merges = len({r["merge"] for r in rows}) > 1
    body = []
    for r in rows:
        if r["system"] != TASK_ARITHMETIC or r["modal_alpha"] is None:
            continue
        model = r["model"] + (f" ({r['merge']})" if merges else "")
        body.append(
            [
                r["dataset"],
                model,
                selection_label(r["selection"], r["folds"]),
                f"{r['modal_alpha']:g} ({100 * r['modal_alpha_share']:.0f}%)",
                *(
                    f"{r[f'{key}_mean']:.4f} [{r[f'{key}_low']:.4f}, {r[f'{key}_high']:.4f}]"
                    for key in ("regret", "regret_reachable")
                ),
                f"{r['p_beats_ir_model']:.2f}",
            ]
        )
    # "beats", not ">": LaTeX's text mode has no ">"
    columns = [
        "dataset",
        "model",
        "selection",
        "modal α (share)",
        f"regret [{100 * confidence:g}% CI]",
        "regret, reachable",
        "P(TA beats ΘT)",
    ]
    return Table(
        columns,
        body,
        labels=3,
        footnote=f"Each selection's choice rerun on {resamples} bootstrap resamples of the queries it chose on (dev: "
        "the dev queries; CV: the test queries, each fold on its other folds' copies; pseudo-queries; stability, NQC "
        "and entropy: the unlabeled queries), each evaluated on the whole test split. Modal α: the α chosen most "
        f"often, and its share of the choices (under CV, every fold's). Regret: test {measure} of one oracle for every "
        "row, the best single (α, λ) of the shared grid (selection.alphas × lam.grid) on test (a labelled upper "
        "bound), minus the choice's: its mean and percentile interval (negative where CV's folds, choosing apart, "
        "beat every single setting). Reachable: the same against the best setting the method could output "
        "(stability, NQC and entropy: α at their fixed λ; the others: the same oracle). P(TA beats ΘT): the share of "
        "resamples whose TA beats ΘT at its own λ (chosen again on each resample) on test; a tie (TA at α = 0) is not "
        "a win. "
        "selection_bootstrap.json in each job's folder has every resample.",
    )
