"""The results tables: a job's (``job_table``), a sweep's report (``results_table``: a job's, with significance),
and the sections of a table of cells built from its rows (``cells_table``, ``label_free_distance``,
``general_domain_table``). Every value of a tested system carries the marks of the baselines it is significantly
better (▲x) or worse (▼x) than (``taskvec_ir.reporting.significance``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from taskvec_ir.config.measures import BEYOND, UNMOVED, depth_warnings
from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import ALPHA_ONE, BM25, HEADINGS, IR_MODEL, MARKS, PAPER_ORDER, TASK_ARITHMETIC, System
from taskvec_ir.config.table import PARETO_SELECTION
from taskvec_ir.reporting.rendering import Entry, Table
from taskvec_ir.reporting.significance import (
    Compared,
    Family,
    family_note,
    marks,
    significance_note,
    unmarkable_note,
)

SHOWN_MEASURES = ("ndcg@10", "precision@10")  # the paper's; every configured measure is in table.csv


def job_table(
    means: Mapping,
    measures: Sequence[str],
    lambdas: Mapping[str, float | None],
    marked: Mapping[str, Mapping[str, str]] | None = None,
    depth: str = "",
) -> Table:
    """A job's results: each system's λ and mean of each measure (``means``, as the job measured them), with the
    significance marks of a tested system (``marked``: system -> measure -> marks), and a footnote on λ and
    ``depth``: the sentences on the measures the first stage's depth limits (``depth_note``)."""
    marked = marked or {}
    rows = [
        [
            System(name).heading,
            "–" if lambdas.get(name) is None else f"{lambdas[name]:g}",
            *(Entry(values[m], marked.get(name, {}).get(m, "")) for m in measures),
        ]
        for name, values in means.items()
    ]
    if any(lam is not None for lam in lambdas.values()):
        footnote = "λ: the BM25 weight each fused system ran at (each baseline's own, where λ was tuned)."
    else:  # retriever=dense: "–" everywhere, and why
        footnote = "No fusion (retriever=dense): each model system ranks the whole corpus by its own embeddings."
    return Table(["system", "λ", *measures], rows, labels=2, footnote=footnote + depth)


def results_table(
    means: Mapping,
    compared: Compared,
    system: str,
    measures: Sequence[str],
    settings: SignificanceConfig,
    lambdas: Mapping[str, float | None],
    depth: str = "",
) -> Table:
    """A sweep's report: ``job_table``, whose ``system`` carries the marks ``compared`` (its comparison with its
    baselines) gives it, and the footnote says what the marks mean."""
    table = job_table(means, measures, lambdas, {system: compared.marks}, depth)
    symbols = {baseline: MARKS[baseline] for baseline in compared.p_values}
    families = [compared.families[m] for m in measures if m in compared.families]
    footnote = f"Marks on {System(system).heading}: " + significance_note(
        symbols, settings, family_note(settings.correction, "row", families), families
    )
    unmarkable = [m for m in measures if m in compared.families and not compared.families[m].markable]
    table.footnote = footnote + unmarkable_note(unmarkable, settings) + f" {table.footnote}"
    return table


def shown_measures(objective: str, measures: Sequence[str], retriever: RetrieverConfig) -> list[str]:
    """The measures a table of cells shows (and tests): the objective, then the paper's others among ``measures``
    that re-ranking ``retriever``'s candidates can move (``config.measures.depth_warnings``)."""
    unmoved = depth_warnings(measures, retriever.top_k, not retriever.dense).get(UNMOVED, [])
    return [objective, *(m for m in SHOWN_MEASURES if m in measures and m != objective and m not in unmoved)]


def depth_note(measures: Sequence[str], retriever: RetrieverConfig, table: bool) -> str:
    """A footnote's sentences on the ``measures`` the first stage's depth limits: those re-ranking cannot change
    (``table``: which a table of cells does not show, but the objective) and those cut below the depth retrieved."""
    k = retriever.top_k
    depth = depth_warnings(measures, k, not retriever.dense)
    notes = []
    if UNMOVED in depth:
        unmoved = ", ".join(depth[UNMOVED])
        notes.append(
            f"{unmoved}: a measure of the top k as a set with k ≥ {k}, the candidates re-ranked, so re-ranking cannot "
            "change it" + (" (not shown unless it is the objective; table.csv has it)" if table else "") + "."
        )
    if BEYOND in depth:
        notes.append(f"{', '.join(depth[BEYOND])}: cut deeper than the {k} documents retrieved (retriever.top_k).")
    return "".join(f" {note}" for note in notes)


# A row's columns that say which family its tests were corrected in (``significance.Family``), per shown measure.
FAMILY_COLUMNS = ("tests", "permutations", "markable")


def _families(rows: list[dict], measure: str) -> list[Family]:
    """The families ``rows``' tests of ``measure`` were corrected in (one per tested row)."""
    return [
        Family(*(r[f"{key}[{measure}]"] for key in FAMILY_COLUMNS))
        for r in rows
        if r.get(f"tests[{measure}]") is not None
    ]


def _unmarkable(rows: list[dict], measure: str, settings: SignificanceConfig) -> str:
    """The footnote's sentence naming the cells (Holm) or the cells' selections (Bonferroni) whose tests of
    ``measure`` could not earn a mark."""
    holm = settings.correction == "holm"
    names = [
        "/".join(str(r[key]) for key in ("dataset", "model", "merge")) + ("" if holm else f" {r['selection']}")
        for r in rows
        if r.get(f"markable[{measure}]") is False
    ]
    return unmarkable_note(list(dict.fromkeys(names)), settings)


# What each system of a table of cells is tested against, in the order of its marks.
BASELINES = {IR_MODEL: (BM25,), ALPHA_ONE: (IR_MODEL, BM25), TASK_ARITHMETIC: (IR_MODEL, BM25, ALPHA_ONE)}
MARKED = (IR_MODEL, BM25, ALPHA_ONE)  # every baseline's mark, in that order
# On a general-domain collection (``table.general_domain``) the question is what τ costs against ΘT alone.
GENERAL_BASELINES = {ALPHA_ONE: (IR_MODEL,), TASK_ARITHMETIC: (IR_MODEL,)}


# A TA entry's note where its search space was set after test results of its cell had been seen († ‡ § mark tests).
TUNED_AFTER_TEST = "tuned after test"
LABELLED = ("dev", "cross_validation")  # a dataset's labelled choice: on its dev split, or by CV where it has none


def selection_label(selection: str, folds: str | None) -> str:
    return {
        "dev": "dev",
        PARETO_SELECTION: "Pareto (dev)",
        "cross_validation": f"{len(folds.split())}-fold CV (no dev)" if folds else "CV (no dev)",
        "pseudo_queries": "pseudo-queries",
        "stability": "stability",
        "nqc": "NQC",
        "entropy": "entropy",
    }[selection]


def cells_table(rows: list[dict], measure: str, settings: SignificanceConfig, dense: bool = False) -> Table:
    """Rows are datasets × selections (then, with several datasets, each selection's mean over them), column groups
    are models (× merges): BM25, ΘT, α = 1 and TA (α, Δ% against ΘT). ``dense``: the model systems ranked the whole
    corpus themselves (retriever=dense), with no fusion, and the footnote says so."""
    groups = list(dict.fromkeys((r["model"], r["merge"]) for r in rows))
    merges = len({merge for _, merge in groups}) > 1
    by_row = _by_row(rows)
    families = _families(rows, measure)
    body = []
    for (dataset, selection), cells in by_row.items():
        entries = []
        for group in groups:
            found = {system: cells.get((*group, system)) for system in PAPER_ORDER}
            entries += _group_entries(found, measure, noted=True)
        folds = next((r["folds"] for r in cells.values() if r["folds"]), None)
        queries = next((r["queries"] for r in cells.values() if r["queries"] is not None), None)
        body.append([dataset, "–" if queries is None else str(queries), selection_label(selection, folds), *entries])
    datasets = list(dict.fromkeys(dataset for dataset, _ in by_row))
    if len(datasets) > 1:
        body += _mean_rows(by_row, groups, measure)
    return Table(
        ["dataset", "queries", "selection", *(HEADINGS[s] for _ in groups for s in PAPER_ORDER)],
        body,
        labels=3,
        groups=[(model + (f" ({merge})" if merges else ""), len(PAPER_ORDER)) for model, merge in groups],
        footnote=f"{measure} on each dataset's test queries (queries: how many); TA = task arithmetic at the α "
        "chosen by the row's selection; "
        + (
            "dense retrieval: ΘT, α=1 and TA each rank the whole corpus by their own embeddings, with no BM25 "
            "candidates and no fusion (no λ); BM25 is the BM25 run. "
            if dense
            else "every fused system at its own λ, chosen by the same selection on the same queries (table.csv has "
            "each system's λ). "
        )
        + "Δ: TA's change over ΘT. "
        f"Marks on {measure}: "
        + significance_note(
            {b: MARKS[b] for b in MARKED}, settings, family_note(settings.correction, "table", families), families
        )
        + _unmarkable(rows, measure, settings)
        + " ΘT is tested against BM25; α=1 against ΘT and BM25; TA against ΘT, BM25 and α=1. "
        "Bold: the best of its model's group. Mean rows: each selection's mean over the datasets it ran on "
        "(a value only where every dataset has one; labels: each dataset's dev row, or its CV row where it has no "
        "dev split). "
        + ("CV (no dev): α chosen" if dense else "CV (no dev): α and λ chosen")
        + ' per fold on the other folds\' test queries (α shown where every fold chose the same, else "varies": '
        + ("table.csv has each fold's α)." if dense else "table.csv has each fold's α/λ).")
        + _pareto_note(rows, measure)
        + _failures_note(rows)
        + _tuned_after_test_note(rows),
    )


def _pareto_note(rows: list[dict], measure: str) -> str:
    """What a Pareto row chose, where the table has one (``table.pareto``)."""
    found = [r for r in rows if r["selection"] == PARETO_SELECTION and r.get("retention_on")]
    if not found:
        return ""
    on = " / ".join(dict.fromkeys(r["retention_on"] for r in found))
    bounds = " / ".join(dict.fromkeys(f"{r['retention_bound']:g}" for r in found))
    return (
        f" Pareto (dev): of the dev row's grid, the best dev score whose retention loss on {on} (TA's "
        f"{measure} there minus ΘT's, at the trial's λ) is at most {bounds} (table.pareto; the section below sets it "
        "beside the dev row; the retention is read by every trial, so it is the front's value, not a held-out one)."
    )


def _group_entries(found: Mapping[str, dict | None], measure: str, noted: bool) -> list[Entry]:
    """One model group's entries (``PAPER_ORDER``): the best of the group bold, TA's α (where ``noted``) and Δ%."""
    values = {s: r[measure] for s, r in found.items() if r and not r["failed"] and r[measure] is not None}
    best = round(max(values.values()), 4) if values else None  # the best as printed: equal to 4 places is a tie
    entries = []
    for system, row in found.items():
        if row is None:
            entries.append(Entry(None))
        elif system not in values:
            entries.append(Entry(None, note="failed" if row["failed"] else ""))
        else:
            baselines = BASELINES.get(system, ())
            notes = [_alpha_note(row)] if noted and system == TASK_ARITHMETIC else []
            if system == TASK_ARITHMETIC and row.get("tuned_after_test"):
                notes.append(TUNED_AFTER_TEST)
            if system == TASK_ARITHMETIC and values.get(IR_MODEL):
                notes.append(f"Δ {100 * (values[system] - values[IR_MODEL]) / values[IR_MODEL]:+.1f}%")
            entries.append(
                Entry(
                    values[system],
                    marks(
                        {b: row.get(f"p_vs_{b}[{measure}]") for b in baselines},
                        {b: values[system] - values[b] if b in values else None for b in baselines},
                        {b: MARKS[b] for b in baselines},
                    ),
                    bold=round(values[system], 4) == best,
                    note=", ".join(notes),
                )
            )
    return entries


def _alpha_note(row: dict) -> str:
    return "α varies" if row["alpha"] is None else f"α {row['alpha']:.2g}"  # varies: folds that chose differently


def _mean_rows(by_row: dict, groups: list[tuple[str, str]], measure: str) -> list[list]:
    """Per selection, each system's mean over the datasets (a value only where none of them failed). A dataset's
    labelled row (dev, or CV where it has no dev split) is one selection here, "labels": the mean a paper
    reports. A selection that ran on one dataset has no mean row (it would repeat that row)."""
    selections: dict[str, list[dict]] = {}
    for (_, selection), cells in by_row.items():
        selections.setdefault("labels" if selection in LABELLED else selection, []).append(cells)
    body = []
    for selection, datasets in selections.items():
        if len(datasets) < 2:
            continue
        entries = []
        for group in groups:
            found = {}
            for system in PAPER_ORDER:
                cells = [d.get((*group, system)) for d in datasets]
                complete = all(c and not c["failed"] and c[measure] is not None for c in cells)
                mean = sum(c[measure] for c in cells) / len(cells) if complete else None
                found[system] = {"failed": None, measure: mean, "alpha": None}
            entries += _group_entries(found, measure, noted=False)
        label = "labels (dev, else CV)" if selection == "labels" else selection_label(selection, None)
        body.append([f"mean ({len(datasets)} datasets)", "", label, *entries])
    return body


def _failures_note(rows: list[dict]) -> str:
    """A note naming each selection that failed, and why (its cells say "failed")."""
    failed = {(r["dataset"], r["model"], r["merge"], r["selection"]): r["failed"] for r in rows if r["failed"]}
    if not failed:
        return ""
    lines = [f"- {'/'.join(key[:3])} {key[3]}: {why}" for key, why in failed.items()]
    return "\n\nFailed (rerun the command to run them again):\n" + "\n".join(lines)


def _tuned_after_test_note(rows: list[dict]) -> str:
    """A note naming each selection whose search space was set after test results of its cell had been seen."""
    tuned = {(r["dataset"], r["model"], r["merge"], r["selection"]): r["tuned_after_test"]
             for r in rows if r.get("tuned_after_test")}  # fmt: skip
    if not tuned:
        return ""
    lines = [f"- {'/'.join(key[:3])} {key[3]}: {why}" for key, why in tuned.items()]
    return (
        "\n\nTuned after test (the note on TA): the search space (selection.alphas, λ's grid) was set after "
        "test results of the same cell under another search space had been seen (docs/sweeps.md):\n" + "\n".join(lines)
    )


def _by_row(rows: list[dict]) -> dict:
    """(dataset, selection) -> (model, merge, system) -> row, in the rows' order."""
    table: dict = {}
    for r in rows:
        table.setdefault((r["dataset"], r["selection"]), {})[(r["model"], r["merge"], r["system"])] = r
    return table


def label_free_distance(rows: list[dict], measure: str) -> Table:
    """How far each label-free α lands from the labelled choice (dev, or cross-validation): in α, and in the test
    measure of task arithmetic; with a column for the merge where the table has several (a null beside τ)."""
    ta = {(r["dataset"], r["model"], r["merge"], r["selection"]): r for r in rows if r["system"] == TASK_ARITHMETIC}
    several = len({merge for _, _, merge, _ in ta}) > 1
    body = []
    for (dataset, model, merge, selection), row in ta.items():
        if selection in (*LABELLED, PARETO_SELECTION) or row["failed"]:
            continue
        labelled = ta.get((dataset, model, merge, "dev")) or ta[(dataset, model, merge, "cross_validation")]
        if labelled["failed"]:
            distance, difference = "–", "–"
        else:
            # where cross-validation's folds chose differently, no one labelled α ran
            distance = "varies" if labelled["alpha"] is None else f"{row['alpha'] - labelled['alpha']:+.2g}"
            difference = f"{row[measure] - labelled[measure]:+.4f}"
        body.append(
            [
                dataset,
                model,
                *([merge] if several else []),
                selection_label(selection, None),
                f"{row['alpha']:.2g}",
                distance,
                f"{row[measure]:.4f}",
                difference,
            ]
        )
    labels = ["dataset", "model", *(["merge"] if several else []), "selection"]
    return Table([*labels, "α", "α − α(labels)", measure, f"− {measure}(labels)"], body, labels=len(labels))


def general_domain_table(rows: list[dict], label: str, measure: str, settings: SignificanceConfig) -> Table:
    """The general-domain section (``runs.table.general_rows``) for the collection ``label``: per dataset ×
    model (× merge) × selection, and per setting where cross-validation's folds chose several, the α and λ chosen
    on the row's dataset, then BM25, ΘT, α=1 and TA on ``label``'s test queries, TA's Δ and Δ% against ΘT; α=1
    and TA marked against ΘT."""
    found = [r for r in rows if r["general_domain"] == label]
    families = _families(found, measure)
    merges = len({r["merge"] for r in found}) > 1
    by_choice: dict[tuple, dict[str, list[dict]]] = {}  # (dataset, model, merge, selection) -> system -> settings
    for r in found:
        by_choice.setdefault((r["dataset"], r["model"], r["merge"], r["selection"]), {}).setdefault(r["system"], [])
        by_choice[(r["dataset"], r["model"], r["merge"], r["selection"])][r["system"]].append(r)
    body = []
    for (dataset, model, merge, selection), systems in by_choice.items():
        for setting in zip(*(systems[s] for s in PAPER_ORDER), strict=True):  # one per setting the choice holds
            by_system = dict(zip(PAPER_ORDER, setting, strict=True))
            ta, theta = by_system[TASK_ARITHMETIC], by_system[IR_MODEL]
            alpha = f"{ta['alpha']:.2g}" + (f" ({ta['general_folds']} folds)" if ta["general_folds"] else "")
            entries = []
            for system, row in by_system.items():
                if row["failed"]:
                    entries.append(Entry(None, note="failed"))
                    continue
                baselines = GENERAL_BASELINES.get(system, ())
                difference = {b: row[measure] - by_system[b][measure] for b in baselines}
                p_values = {b: row[f"p_vs_{b}[{measure}]"] for b in baselines}
                entries.append(Entry(row[measure], marks(p_values, difference, {b: MARKS[b] for b in baselines})))
            if ta["failed"] or theta["failed"]:
                delta = ["–", "–"]
            else:
                change = ta[measure] - theta[measure]
                relative = f"{100 * change / theta[measure]:+.1f}%" if theta[measure] else "–"
                delta = [f"{change:+.4f}", relative]
            name = model + (f" ({merge})" if merges else "")
            lam = "–" if ta["lam"] is None else f"{ta['lam']:g}"  # retriever=dense: nothing fused
            body.append([dataset, name, selection_label(selection, ta["folds"]), alpha, lam, *entries, *delta])
    queries = next((r["queries"] for r in found if r["queries"] is not None), None)
    fused = (
        "every fused system is fused at that row's λ"
        if any(r["lam"] is not None for r in found)
        else "nothing is fused (retriever=dense: each model system ranks the whole corpus; λ –)"
    )
    return Table(
        ["dataset", "model", "selection", "α", "λ", *(HEADINGS[s] for s in PAPER_ORDER), "Δ", "Δ%"],
        body,
        labels=5,
        footnote=f"{measure} on the test queries of {label} ({queries or '–'}), a collection none of the rows "
        f"is tuned on: each row's TA is ΘT + α·τ at the α its selection chose on the row's dataset, and {fused} "
        "(so Δ is τ's effect alone). Δ, Δ%: TA's change over ΘT. Where "
        "cross-validation's folds chose different settings, each is a row (n of k: the folds that chose it). "
        f"Marks on {measure}: "
        + significance_note(
            {IR_MODEL: MARKS[IR_MODEL]},
            settings,
            family_note(settings.correction, "section", families),
            families,
        )
        + _unmarkable(found, measure, settings)
        + " α=1 and TA are tested against ΘT."
        + _failures_note([{**r, "dataset": label} for r in found if r["failed"]]),
    )
