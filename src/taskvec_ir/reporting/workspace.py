"""The W&B workspace that answers docs/wandb.md's questions: a section per question, titled by it, whose panels read
the keys every job logs (``tracking``). Built offline (``workspace``, tested without a server); saved to
``wandb.entity``/``wandb.project`` by ``taskvec-ir task=workspace wandb.mode=online`` (``save_workspace``).
wandb-workspaces, W&B's own library for workspaces, is the ``workspace`` extra: only this task imports it.
"""

from __future__ import annotations

from pathlib import Path

from taskvec_ir.config.composed import Config
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import tracking

# The runs table's first columns: the summary's, where every run of every kind has them (the config's nested keys
# are stored under another name on the server, e.g. alpha.value.used).
COLUMNS = ("objective", "objective_split", "objective_measure", "alpha", "lam")


def sections() -> list:
    """One section per question of docs/wandb.md, titled by it, with the panels that answer it."""
    import wandb_workspaces.reports.v2 as wr
    import wandb_workspaces.workspaces as ws

    objective = wr.SummaryMetric("objective")
    questions = {
        "Which run is best?": [
            wr.BarPlot(title="objective (higher is better; objective_split says dev or test)", metrics=["objective"]),
        ],
        "Which α and λ did a run use, and what did they give?": [
            wr.ScatterPlot(title="objective against the α used", x=wr.Config("alpha.used"), y=objective),
            wr.ParallelCoordinatesPlot(
                columns=[
                    wr.ParallelCoordinatesPlotColumn(metric=wr.Config("alpha.used"), display_name="α used"),
                    wr.ParallelCoordinatesPlotColumn(metric=wr.Config("lam.used"), display_name="λ used"),
                    wr.ParallelCoordinatesPlotColumn(metric=objective),
                ]
            ),
        ],
        "How does λ trade off against α?": [
            wr.LinePlot(
                title="objective or criterion against λ, at each run's α",
                x="lambda_curve/lam",
                y=["lambda_curve/value"],
            ),  # fmt: skip
        ],
        "How does a selection's criterion respond to α?": [
            wr.LinePlot(title="criterion against α, at the chosen λ", x="alpha_curve/alpha", y=["alpha_curve/value"]),
        ],
        "Which queries does τ help or hurt?": [wr.WeavePanelSummaryTable(table_name="test/per_query")],
        "What did the merge do?": [
            wr.BarPlot(title="share of ΘT's weights the merge changed", metrics=["merge/changed_fraction"]),
            wr.WeavePanelSummaryTable(table_name="merge/layer_norms"),
        ],
        "What did a sweep search, and what did a table find?": [
            wr.WeavePanelSummaryTable(table_name="sensitivity/trials"),
            wr.WeavePanelSummaryTable(table_name="table"),
        ],
        "Which code and settings made a run?": [wr.RunComparer(diff_only="split")],
    }
    return [ws.Section(name=question, panels=panels, is_open=True) for question, panels in questions.items()]


def workspace(entity: str, project: str, name: str = "taskvec-ir"):
    """The workspace of ``entity``/``project``: ``sections``, the runs table led by ``COLUMNS`` and sorted by the
    objective, best first, and W&B's own panels for every other key logged."""
    import wandb_workspaces.workspaces as ws

    runs = ws.RunsetSettings(
        pinned_columns=[f"summary:{column}" for column in COLUMNS],
        order=[ws.Ordering(ws.Summary("objective"), ascending=False)],
    )
    return ws.Workspace(
        entity=entity,
        project=project,
        name=name,
        sections=sections(),
        runset_settings=runs,
        auto_generate_panels=True,
    )


def save_workspace(cfg: Config, out_dir: Path, sampler_seed: int | None = None) -> dict:
    """``task=workspace``: save ``workspace`` to ``wandb.entity`` (default: the login's) / ``wandb.project`` as a
    new view of the project; its URL is printed and returned."""
    if tracking.tracking_mode(cfg.wandb.mode) != "online":
        raise UserError(
            "task=workspace saves a workspace on the W&B server: give wandb.mode=online (after `wandb login`)"
        )
    try:
        import wandb_workspaces  # noqa: F401 - the workspace extra
    except ImportError:
        raise UserError("task=workspace needs W&B's workspace library: pip install 'taskvec-ir[workspace]'") from None
    import wandb

    entity = cfg.wandb.entity or wandb.Api().default_entity
    saved = workspace(entity, cfg.wandb.project).save()  # a new view each time
    print(f"Workspace: {saved.url}")
    return {"workspace": saved.url}
