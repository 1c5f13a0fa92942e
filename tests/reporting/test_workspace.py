"""The W&B workspace, built offline: a section per question of docs/wandb.md, each panel reading keys that
question's row names; and ``task=workspace`` refusing to run where it cannot reach the server."""

import re
from pathlib import Path

import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.reporting.workspace import COLUMNS, save_workspace, workspace
from taskvec_ir.runs.compose import compose

from wandb_records import panel_keys

DOCS = Path(__file__).resolve().parents[2] / "docs" / "wandb.md"


def question_rows() -> dict[str, str]:
    """docs/wandb.md's "Which panel answers which question" table: question -> the rest of its row."""
    text = DOCS.read_text().split("## Which panel answers which question", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| question")]
    cells = [[cell.strip() for cell in row.strip("|").split("|")] for row in rows]
    return {row[0]: " | ".join(row[1:]) for row in cells}


def test_the_workspace_has_a_section_per_question_of_the_docs_whose_panels_read_the_keys_its_row_names():
    built = workspace("someone", "taskvec-ir")
    rows = question_rows()
    assert [section.name for section in built.sections] == list(rows) and len(rows) == 8
    for question, keys in panel_keys(built).items():
        named = set(re.findall(r"`([^`]+)`", rows[question]))
        assert {key for _, key in keys} <= named, (question, {key for _, key in keys} - named)
    assert {key for keys in panel_keys(built).values() for key in keys} >= {
        ("summary", "objective"),
        ("config", "alpha.used"),
        ("history", "lambda_curve/lam"),
        ("history", "alpha_curve/value"),
        ("summary", "test/per_query"),
    }
    # The runs table: led by the objective and what it was measured on, best first.
    settings = built.runset_settings
    assert settings.pinned_columns == ["run:displayName", *(f"summary:{column}" for column in COLUMNS)]
    (order,) = settings.order
    assert (order.item.name, order.item.section, order.ascending) == ("objective", "summary", False)
    assert (built.entity, built.project, built.auto_generate_panels) == ("someone", "taskvec-ir", True)


@pytest.mark.parametrize("mode", ["offline", "disabled"])
def test_saving_the_workspace_needs_the_server(mode, tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    cfg = compose(["task=workspace", f"wandb.mode={mode}"])
    with pytest.raises(UserError, match=r"task=workspace saves a workspace on the W&B server: give wandb.mode=online"):
        save_workspace(cfg, tmp_path)
