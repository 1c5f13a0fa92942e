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

from taskvec_ir.config.schema import SignificanceConfig
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
        "(a value only where every dataset has one). "
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
    """Per selection, each system's mean over the datasets (a value only where none of them failed)."""
    selections: dict[str, list[dict]] = {}
    for (_, selection), cells in by_row.items():
        selections.setdefault(selection, []).append(cells)
    body = []
    for selection, datasets in selections.items():
        entries = []
        for group in groups:
            found = {}
            for system in PAPER_ORDER:
                cells = [d.get((*group, system)) for d in datasets]
                complete = all(c and not c["failed"] and c[measure] is not None for c in cells)
                mean = sum(c[measure] for c in cells) / len(cells) if complete else None
                found[system] = {"failed": None, measure: mean, "alpha": None}
            entries += _group_entries(found, measure, noted=False)
        body.append([f"mean ({len(datasets)} datasets)", "", selection_label(selection, None), *entries])
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
        if selection in ("dev", "cross_validation") or row["failed"]:
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


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV, one column per key."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
