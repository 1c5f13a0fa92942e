"""The ``taskvec-ir`` command: a Hydra app that types the composed config (``taskvec_ir.config``) and runs its
task: a job (``taskvec_ir.runs.job``), an adaptation, or a table (``taskvec_ir.runs.table``). A sweep
(``-m sweep=...``) runs each trial through here too."""

from __future__ import annotations

import logging
import os
import shutil
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from taskvec_ir.config.composed import CONFIG_DIR, Task, register
from taskvec_ir.storage.outputs import PasswordInURLError, record_failure

log = logging.getLogger("taskvec_ir")
register()


def task_runner(task: Task):
    """The function that runs ``task`` (imported when asked: the command starts without the model libraries)."""
    from taskvec_ir.runs.job import run_adapt, run_job
    from taskvec_ir.runs.table import run_table

    return {Task.evaluate: run_job, Task.adapt: run_adapt, Task.table: run_table}[task]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def main(cfg: DictConfig) -> dict:
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from taskvec_ir.errors import UserError
    from taskvec_ir.runs.compose import typed_config

    hydra_cfg = HydraConfig.get()
    try:
        config = typed_config(cfg)
        options = {"sampler_seed": OmegaConf.select(hydra_cfg, "sweeper.sampler.seed", default=None)}  # logged
        if config.sweep is not None and config.sweep.final:  # a sweep's final evaluation: its report from the study
            from taskvec_ir.runs.sweeping.final_report import final_report

            options["report"] = final_report(hydra_cfg.sweeper.storage, config.sweep, Path(hydra_cfg.sweep.dir))
        return task_runner(config.task)(config, Path(hydra_cfg.runtime.output_dir), **options)
    except Exception as error:
        # In a multirun the sweeper records the failed job, and its dir says why (a table shows it); a single
        # run ends with a user error's message alone, and anything else is a bug that keeps its traceback.
        if hydra_cfg.mode == RunMode.MULTIRUN:
            record_failure(Path(hydra_cfg.runtime.output_dir), error)
            raise
        if isinstance(error, PasswordInURLError) and hydra_cfg.output_subdir is not None:
            # Hydra saved the command line into the run's .hydra/ before the config was checked.
            shutil.rmtree(Path(hydra_cfg.runtime.output_dir) / hydra_cfg.output_subdir, ignore_errors=True)
        if not isinstance(error, UserError) or os.environ.get("HYDRA_FULL_ERROR") == "1":
            raise
        log.error("%s", error)
        sys.exit(f"taskvec-ir: {error}")
