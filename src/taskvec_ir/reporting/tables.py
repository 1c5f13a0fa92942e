"""Results tables as data, and the one renderer that writes them as Markdown or LaTeX.

A sweep's results (``taskvec_ir.reporting.report``) and a table of cells (``taskvec_ir.runs.table``) each
build a ``Table``: label columns, then numbers (``Entry``) that may carry significance marks, be bold (the
best) and a note (the α chosen). Both are rendered here, with one significance threshold.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass, field

from taskvec_ir.config.systems import BM25, HEADINGS, IR_MODEL, MARKS, PAPER_ORDER, TASK_ARITHMETIC

SIGNIFICANCE = 0.05  # every table marks a difference with p below this (after its correction)
# How a paper writes what Markdown writes as plain text.
_LATEX = {"_": r"\_", "ΘT": r"$\Theta_T$", "ΘD": r"$\Theta_D$", "α": r"$\alpha$", "λ": r"$\lambda$", "%": r"\%"}
_LATEX_MARKS = {"†": r"\dagger", "‡": r"\ddagger", "§": r"\S", "¶": r"\P"}


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


def marks(p_values: Mapping[str, float | None], symbols: Mapping[str, str]) -> str:
    """The symbols of the baselines whose p-value is below ``SIGNIFICANCE``, in ``symbols``' order."""
    return "".join(
        symbol for name, symbol in symbols.items() if p_values.get(name) is not None and p_values[name] < SIGNIFICANCE
    )


# -- a table of cells (``task=table``): one row per (cell, selection, system) in, tables out ----------------------
BASELINES = (IR_MODEL, BM25)  # what a model system of a table of cells is tested against


def selection_label(selection: str, folds: str | None) -> str:
    return {
        "dev": "dev",
        "cross_validation": f"{len(folds.split()) if folds else ''}-fold CV (no dev)",
        "pseudo_queries": "pseudo-queries",
        "stability": "stability",
        "nqc": "NQC",
    }[selection]


def cells_table(rows: list[dict], measure: str) -> Table:
    """Rows are datasets × selections, column groups are models (× merges): BM25, ΘT, α = 1 and TA (α)."""
    groups = list(dict.fromkeys((r["model"], r["merge"]) for r in rows))
    merges = len({merge for _, merge in groups}) > 1
    body = []
    for (dataset, selection), cells in _by_row(rows).items():
        values = [r[measure] for r in cells.values() if r[measure] is not None]  # a failed selection has none
        best = round(max(values), 4) if values else None  # the best as printed: equal to 4 places is a tie
        entries = []
        for group in groups:
            for system in PAPER_ORDER:
                row = cells.get((*group, system))
                entries.append(_entry(row, measure, best) if row else Entry(None))
        folds = next((r["folds"] for r in cells.values() if r["folds"]), None)
        body.append([dataset, selection_label(selection, folds), *entries])
    legend = ", ".join(f"{MARKS[b]} differs from {HEADINGS[b]}" for b in BASELINES)
    return Table(
        ["dataset", "selection", *(HEADINGS[s] for _ in groups for s in PAPER_ORDER)],
        body,
        labels=2,
        groups=[(model + (f" ({merge})" if merges else ""), len(PAPER_ORDER)) for model, merge in groups],
        footnote=f"{measure} on each dataset's test queries; TA = task arithmetic at the α chosen by the row's "
        "selection (every system fused with BM25 at that selection's λ). "
        f"Marks (paired t-test on {measure}, Bonferroni, p < {SIGNIFICANCE}): {legend}. "
        "Bold: the row's best. CV (no dev): α and λ chosen per fold on the other folds' test queries (α shown where "
        'every fold chose the same, else "varies": table.csv has each fold\'s α/λ).' + _failures_note(rows),
    )


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


def _entry(row: dict, measure: str, best: float | None) -> Entry:
    if row["failed"]:
        return Entry(None, note="failed")
    alpha = "varies" if row["alpha"] is None else f"{row['alpha']:.2g}"  # folds that chose differently
    return Entry(
        row[measure],
        marks({b: row[f"p_vs_{b}[{measure}]"] for b in BASELINES}, {b: MARKS[b] for b in BASELINES}),
        bold=round(row[measure], 4) == best,
        note=f"α {alpha}" if row["system"] == TASK_ARITHMETIC else "",
    )


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
