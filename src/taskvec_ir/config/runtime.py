"""Where a run keeps its files and how it records itself: the cache (``cache``), ir_datasets' folders (``data``)
and W&B (``wandb``). None of them changes a result; conf/config.yaml reads the folders from the environment.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from taskvec_ir.config.checks import Choice, choice

# wandb.mode; WANDB_MODE in the environment wins.
WandbMode = Choice("WandbMode", ["offline", "online", "disabled"])

# wandb.console: W&B's console capture (the job's app.log has it all).
WandbConsole = Choice("WandbConsole", ["off", "auto", "wrap", "redirect"])


@dataclass
class CacheConfig:
    """BM25 candidates, task vectors, model scores and adapted checkpoints, content-addressed."""

    dir: str | None = "~/.cache/taskvec-ir"  # TASKVEC_IR_CACHE; null disables caching
    clear: bool = False  # empty the cache before this run


@dataclass
class DataConfig:
    home: str = "~/.ir_datasets"  # IR_DATASETS_HOME: where ir_datasets keeps downloads and doc stores
    mirror_dir: str | None = None  # TASKVEC_IR_MIRROR: offline copies of the files ir_datasets downloads


@dataclass
class WandbConfig:
    mode: WandbMode = WandbMode.offline
    project: str = "taskvec-ir"
    entity: str | None = None
    group: str | None = None  # a sweep's study, a table's cell; none for a single job (docs/wandb.md)
    job_type: str | None = None  # null: the job's kind (run, trial, final, selection, general, adapt, table)
    name: str | None = None  # null: <kind>/<dataset>/<model>/<setting>-<suffix>, unique
    init_timeout: float = 60  # seconds to reach the W&B server online; then the run is kept offline
    tags: list[str] = field(default_factory=list)  # conf/config.yaml: model, dataset, kind; a job adds its own
    console: WandbConsole = WandbConsole.off
    system_metrics: bool = False  # W&B's CPU/GPU/memory charts (worth it for a 7B run; they slow short jobs)

    def __post_init__(self):
        self.mode = choice(WandbMode, self.mode, "wandb.mode")
        self.console = choice(WandbConsole, self.console, "wandb.console")
