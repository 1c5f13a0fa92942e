"""Results tables as data, and the one renderer that writes them as Markdown or LaTeX.

A sweep's results (``taskvec_ir.reporting.report``) and a table of cells (``taskvec_ir.runs.table``) each
build a ``Table``: label columns, then numbers (``Entry``) that may carry significance marks, be bold (the
best) and a note (the α chosen). Both are rendered here, with one significance threshold and one convention for
its marks: ▲x (▼x) after a value says it is significantly better (worse) than the baseline whose mark is x
(``taskvec_ir.config.systems.MARKS``: † ΘT, ‡ BM25, § α=1, ¶ ΘD).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from taskvec_ir.config.significance import SignificanceConfig
from taskvec_ir.config.systems import ALPHA_ONE, BM25, HEADINGS, IR_MODEL, MARKS, PAPER_ORDER, TASK_ARITHMETIC

SIGNIFICANCE = 0.05  # every table marks a difference with p below this (after its correction)
BETTER, WORSE = "▲", "▼"  # before a baseline's mark: significantly better, or worse, than that baseline
TESTS = {"t_test": "paired t-test", "randomization": "Fisher's paired randomization test"}
CORRECTIONS = {"bonferroni": "Bonferroni", "holm": "Holm"}
# How a paper writes what Markdown writes as plain text (LaTeX marks need amssymb for the triangles).
_LATEX = {"_": r"\_", "ΘT": r"$\Theta_T$", "ΘD": r"$\Theta_D$", "α": r"$\alpha$", "λ": r"$\lambda$", "%": r"\%",
          "Δ": r"$\Delta$"}  # fmt: skip
_LATEX_MARKS = {
    "†": r"\dagger",
    "‡": r"\ddagger",
    "§": r"\S",
    "¶": r"\P",
    BETTER: r"\blacktriangle",
    WORSE: r"\blacktriangledown",
}


@dataclass(frozen=True)
class Entry:
    """One number of a table: its value, significance marks, bold, and a note after it; with no value, the note
    says why (e.g. "failed"), or a dash."""

    value: float | None
    marks: str = ""
    bold: bool = False
    note: str = ""


@dataclass
class Table:
    """``columns`` head the ``rows``; the first ``labels`` columns are text, the others ``Entry`` numbers.
    ``groups`` (label, span) head runs of number columns (LaTeX draws them above the header; Markdown prefixes
    them to the column names)."""

    columns: list[str]
    rows: list[list]
    labels: int = 1
    groups: list[tuple[str, int]] = field(default_factory=list)
    footnote: str = ""


def markdown(table: Table) -> str:
    columns = list(table.columns)
    if table.groups:
        names = [label for label, span in table.groups for _ in range(span)]
        columns[table.labels :] = [f"{g} {c}".strip() for g, c in zip(names, columns[table.labels :], strict=True)]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * table.labels + "---:|" * (len(columns) - table.labels),
    ]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in table.rows]
    return "\n".join(lines) + (f"\n\n{table.footnote}\n" if table.footnote else "\n")


def latex(table: Table) -> str:
    numbers = len(table.columns) - table.labels
    lines = [r"\begin{tabular}{" + "l" * table.labels + "r" * numbers + "}", r"\toprule"]
    if table.groups:
        groups = [rf"\multicolumn{{{span}}}{{c}}{{{latex_text(label)}}}" for label, span in table.groups]
        lines.append(" & " * table.labels + " & ".join(groups) + r" \\")
    lines += [" & ".join(latex_text(c) for c in table.columns) + r" \\", r"\midrule"]
    lines += [" & ".join(_latex_cell(cell) for cell in row) + r" \\" for row in table.rows]
    lines += [r"\bottomrule", r"\end{tabular}"]
    return "\n".join(lines) + "\n"


def latex_text(text: str) -> str:
    for plain, written in _LATEX.items():
        text = text.replace(plain, written)
    return text


def _markdown_cell(cell) -> str:
    if not isinstance(cell, Entry):
        return str(cell)
    if cell.value is None:
        return cell.note or "–"
    text = f"{cell.value:.4f}{cell.marks}"
    return (f"**{text}**" if cell.bold else text) + (f" ({cell.note})" if cell.note else "")


def _latex_cell(cell) -> str:
    if not isinstance(cell, Entry):
        return latex_text(str(cell))
    if cell.value is None:
        return latex_text(cell.note) if cell.note else "--"
    marks = "".join(_LATEX_MARKS.get(mark, mark) for mark in cell.marks)
    text = f"{cell.value:.4f}" + (f"$^{{{marks}}}$" if marks else "")
    return (rf"\textbf{{{text}}}" if cell.bold else text) + (f" ({latex_text(cell.note)})" if cell.note else "")


def marks(
    p_values: Mapping[str, float | None], differences: Mapping[str, float | None], symbols: Mapping[str, str]
) -> str:
    """The symbols of the baselines whose p-value is below ``SIGNIFICANCE``, in ``symbols``' order, each after
    ``BETTER`` or ``WORSE`` as the value's difference to the baseline's is positive or negative."""
    return "".join(
        (BETTER if differences[name] > 0 else WORSE) + symbol
        for name, symbol in symbols.items()
        if p_values.get(name) is not None and p_values[name] < SIGNIFICANCE
    )


def significance_note(symbols: Mapping[str, str], settings: SignificanceConfig, family: str) -> str:
    """What a table's marks say, and how they were tested: the footnote of every table that has them."""
    legend = ", ".join(f"{symbol} {HEADINGS[baseline]}" for baseline, symbol in symbols.items())
    return (
        f"{BETTER}x / {WORSE}x: significantly better / worse than the baseline marked x ({legend}); "
        f"{TESTS[settings.test]}, two-sided, over the test queries, {CORRECTIONS[settings.correction]} {family}, "
        f"p < {SIGNIFICANCE}."
    )


# -- a table of cells (``task=table``): one row per (cell, selection, system) in, tables out ----------------------
# What each system of a table of cells is tested against, in the order of its marks.
BASELINES = {IR_MODEL: (BM25,), ALPHA_ONE: (IR_MODEL, BM25), TASK_ARITHMETIC: (IR_MODEL, BM25, ALPHA_ONE)}
MARKED = (IR_MODEL, BM25, ALPHA_ONE)  # every baseline's mark, in that order
# On a general-domain collection (``table.general_domain``) the question is what τ costs against ΘT alone.
GENERAL_BASELINES = {ALPHA_ONE: (IR_MODEL,), TASK_ARITHMETIC: (IR_MODEL,)}


LABELLED = ("dev", "cross_validation")  # a dataset's labelled choice: on its dev split, or by CV where it has none


def selection_label(selection: str, folds: str | None) -> str:
    return {
        "dev": "dev",
        "cross_validation": f"{len(folds.split())}-fold CV (no dev)" if folds else "CV (no dev)",
        "pseudo_queries": "pseudo-queries",
        "stability": "stability",
        "nqc": "NQC",
    }[selection]


def cells_table(rows: list[dict], measure: str, settings: SignificanceConfig, dense: bool = False) -> Table:
    """Rows are datasets × selections (then, with several datasets, each selection's mean over them), column groups
    are models (× merges): BM25, ΘT, α = 1 and TA (α, Δ% against ΘT). ``dense``: the model systems ranked the whole
    corpus themselves (retriever=dense), with no fusion, and the footnote says so."""
    groups = list(dict.fromkeys((r["model"], r["merge"]) for r in rows))
    merges = len({merge for _, merge in groups}) > 1
    by_row = _by_row(rows)
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
    family = "over all of this table's tests" if settings.correction == "holm" else "over each value's baselines"
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
        + significance_note({b: MARKS[b] for b in MARKED}, settings, family)
        + " ΘT is tested against BM25; α=1 against ΘT and BM25; TA against ΘT, BM25 and α=1. "
        "Bold: the best of its model's group. Mean rows: each selection's mean over the datasets it ran on "
        "(a value only where every dataset has one; labels: each dataset's dev row, or its CV row where it has no "
        "dev split). "
        + ("CV (no dev): α chosen" if dense else "CV (no dev): α and λ chosen")
        + ' per fold on the other folds\' test queries (α shown where every fold chose the same, else "varies": '
        + ("table.csv has each fold's α)." if dense else "table.csv has each fold's α/λ).")
        + _failures_note(rows),
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


def _by_row(rows: list[dict]) -> dict:
    """(dataset, selection) -> (model, merge, system) -> row, in the rows' order."""
    table: dict = {}
    for r in rows:
        table.setdefault((r["dataset"], r["selection"]), {})[(r["model"], r["merge"], r["system"])] = r
    return table


def label_free_distance(rows: list[dict], measure: str) -> Table:
    """How far each label-free α lands from the labelled choice (dev, or cross-validation): in α, and in the test
    measure of task arithmetic."""
    ta = {(r["dataset"], r["model"], r["merge"], r["selection"]): r for r in rows if r["system"] == TASK_ARITHMETIC}
    body = []
    for (dataset, model, merge, selection), row in ta.items():
        if selection in LABELLED or row["failed"]:
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
                selection_label(selection, None),
                f"{row['alpha']:.2g}",
                distance,
                f"{row[measure]:.4f}",
                difference,
            ]
        )
    columns = ["dataset", "model", "selection", "α", "α − α(labels)", measure, f"− {measure}(labels)"]
    return Table(columns, body, labels=3)


def general_domain_table(rows: list[dict], label: str, measure: str, settings: SignificanceConfig) -> Table:
    """The general-domain section (``runs.table.Grid.general_rows``) for the collection ``label``: per dataset ×
    model (× merge) × selection, and per setting where cross-validation's folds chose several, the α and λ chosen
    on the row's dataset, then BM25, ΘT, α=1 and TA on ``label``'s test queries, TA's Δ and Δ% against ΘT; α=1
    and TA marked against ΘT."""
    found = [r for r in rows if r["general_domain"] == label]
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
            body.append(
                [dataset, name, selection_label(selection, ta["folds"]), alpha, f"{ta['lam']:g}", *entries, *delta]
            )
    queries = next((r["queries"] for r in found if r["queries"] is not None), None)
    family = "over all of this section's tests" if settings.correction == "holm" else "over each value's baselines"
    return Table(
        ["dataset", "model", "selection", "α", "λ", *(HEADINGS[s] for s in PAPER_ORDER), "Δ", "Δ%"],
        body,
        labels=5,
        footnote=f"{measure} on the test queries of {label} ({queries or '–'}), a collection none of the rows "
        f"is tuned on: each row's TA is ΘT + α·τ at the α its selection chose on the row's dataset, and every fused "
        "system is fused at that row's λ (so Δ is τ's effect alone). Δ, Δ%: TA's change over ΘT. Where "
        "cross-validation's folds chose different settings, each is a row (n of k: the folds that chose it). "
        f"Marks on {measure}: "
        + significance_note({IR_MODEL: MARKS[IR_MODEL]}, settings, family)
        + " α=1 and TA are tested against ΘT."
        + _failures_note([{**r, "dataset": label} for r in found if r["failed"]]),
    )


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV, one column per key of any row (a row without a key leaves its cell empty)."""
    out = io.StringIO()
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


# -- analyses in a table of cells (``analyses``): table.csv columns, and a section of table.md each --------------
def analysis_columns(analysed: Mapping | None) -> dict:
    """A job's ``analyses`` (its ``metrics.json``) as flat table.csv columns: ``alpha_response/...`` (ΘT, the chosen
    α, the oracle α's upper bound, and the shares helped, hurt and unchanged) and ``depth/<k>/...`` (the objective,
    the share of the gain over BM25 kept, seconds per query measured)."""
    columns: dict = {}
    response = (analysed or {}).get("alpha_response")
    if response:
        keys = ("ir_model", "chosen", "oracle", "helped", "hurt", "unchanged")
        columns.update({f"alpha_response/{key}": response[key] for key in keys})
    depth = (analysed or {}).get("depth")
    for row in depth["depths"] if depth else []:
        for key in (depth["measure"], "gain_kept", "seconds_per_query"):
            columns[f"depth/{row['depth']}/{key}"] = row[key]
    return columns


def analysis_sections(rows: list[dict], measure: str) -> str:
    """table.md's sections of the analyses its jobs ran (task arithmetic's rows that have their columns)."""
    found = [r for r in rows if r["system"] == TASK_ARITHMETIC and not r["failed"]]
    sections = {
        "Where does τ help: per-query α response": _alpha_response_table(found, measure),
        f"Re-ranking depth: {measure} and its cost": _depth_table(found, measure),
    }
    return "".join(f"\n### {title}\n\n{markdown(table)}" for title, table in sections.items() if table.rows)


_ANALYSIS_LABELS = ["dataset", "model", "merge", "selection"]


def _alpha_response_table(rows: list[dict], measure: str) -> Table:
    """Per row: ΘT, the chosen α and the oracle α's mean, and the shares of queries helped, hurt and unchanged."""
    body = [
        [
            *(r[key] for key in _ANALYSIS_LABELS),
            *(Entry(r[f"alpha_response/{key}"]) for key in ("ir_model", "chosen", "oracle")),
            *(f"{100 * r[f'alpha_response/{key}']:.0f}%" for key in ("helped", "hurt", "unchanged")),
        ]
        for r in rows
        if r.get("alpha_response/oracle") is not None
    ]
    return Table(
        [*_ANALYSIS_LABELS, "ΘT", "TA (chosen α)", "oracle α (upper bound)", "helped", "hurt", "unchanged"],
        body,
        labels=len(_ANALYSIS_LABELS),
        footnote=f"{measure} of task arithmetic at each row's λ. Oracle α: each query's best α of the grid, chosen "
        "with its own test labels: an upper bound no selection can reach. Helped / hurt / unchanged: queries whose "
        f"{measure} the chosen α raises / lowers / leaves within analysis.unchanged_within of ΘT's.",
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
            notes = [f"{100 * kept:.0f}% of gain" if kept is not None else "", f"{seconds:.2g} s/q" if seconds else ""]
            entries.append(Entry(value, note=", ".join(note for note in notes if note)))
        if any(entry.value is not None for entry in entries):
            body.append([*(r[key] for key in _ANALYSIS_LABELS), *entries])
    return Table(
        [*_ANALYSIS_LABELS, *(f"k={k}" for k in depths)],
        body,
        labels=len(_ANALYSIS_LABELS),
        footnote=f"{measure} of task arithmetic at the row's setting when only BM25's top k are re-ranked (the others "
        "follow in BM25's order); the share of its gain over BM25 at the deepest k that k keeps; seconds per query "
        "measured for scoring k pairs.",
    )


# -- how sure is each selection (``selection.bootstrap``) ----------------------------------------------------------
BOOTSTRAP_COLUMNS = ("modal_alpha", "modal_alpha_share", "regret_mean", "regret_low", "regret_high", "p_beats_ir_model")


def bootstrap_columns(result: Mapping | None) -> dict:
    """table.csv's bootstrap columns from a job's ``selection_bootstrap.json`` (None: no values)."""
    if result is None:
        return dict.fromkeys(BOOTSTRAP_COLUMNS)
    regret = result["regret"]
    values = (result["modal_alpha"], result["modal_share"], regret["mean"], regret["low"], regret["high"])
    return dict(zip(BOOTSTRAP_COLUMNS, (*values, result["p_beats_ir_model"]), strict=True))


def bootstrap_table(rows: list[dict], measure: str, confidence: float, resamples: int) -> Table:
    """Per (cell, selection) with a bootstrap, on task arithmetic's row: the modal α and its share of the choices,
    the regret's mean and percentile interval, and P(TA > ΘT)."""
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
                f"{r['regret_mean']:.4f} [{r['regret_low']:.4f}, {r['regret_high']:.4f}]",
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
        "P(TA beats ΘT)",
    ]
    return Table(
        columns,
        body,
        labels=3,
        footnote=f"Each selection's choice rerun on {resamples} bootstrap resamples of the queries it chose on (dev: "
        "the dev queries; CV: the test queries, each fold on its other folds' copies; pseudo-queries; stability and "
        "NQC: the unlabeled queries), each evaluated on the whole test split. Modal α: the α chosen most often, and "
        f"its share of the choices (under CV, every fold's). Regret: test {measure} of the best (α, λ) of the grid on "
        "test (a labelled upper bound; per fold under CV) minus the choice's, its mean and percentile interval. "
        "P(TA beats ΘT): the share of resamples whose TA beats ΘT at its own λ (chosen again on each resample) on "
        "test; a tie (TA at α = 0) is not a win. selection_bootstrap.json in each job's folder has every resample.",
    )
