"""Results tables as data, and the one renderer that writes them as Markdown, LaTeX or CSV.

A table is label columns, then numbers (``Entry``) that may carry significance marks
(``taskvec_ir.reporting.significance``), be bold (the best) and a note (the α chosen); Markdown writes the marks as
they are, LaTeX as amssymb's symbols.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field

from taskvec_ir.reporting.significance import BETTER, WORSE

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


def csv_text(rows: list[dict]) -> str:
    """The rows as CSV, one column per key of any row (a row without a key leaves its cell empty)."""
    out = io.StringIO()
    fieldnames = list(dict.fromkeys(key for row in rows for key in row))
    writer = csv.DictWriter(out, fieldnames=fieldnames, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
