"""The ``taskvec-ir`` command: a Hydra app that types the composed config (``taskvec_ir.config``) and runs its
task: a job (``taskvec_ir.runs.job``), an adaptation, a table (``taskvec_ir.runs.table``), or the saving of a W&B
workspace (``taskvec_ir.reporting.workspace``). A sweep (``-m sweep=...``) runs each trial through here too. Its
``--help`` is ``conf/hydra/help/taskvec_ir.yaml``."""

from __future__ import annotations

import logging
import os
import shlex
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
    from taskvec_ir.reporting.workspace import save_workspace
    from taskvec_ir.runs.adapt_task import run_adapt
    from taskvec_ir.runs.job import run_job
    from taskvec_ir.runs.table import run_table

    return {Task.evaluate: run_job, Task.adapt: run_adapt, Task.table: run_table, Task.workspace: save_workspace}[task]


def main() -> None:
    """The console script: taskvec-ir's own ``--version``, and a command whose flags split its overrides told how
    to write it; everything else is Hydra's (``run``)."""
    arguments = sys.argv[1:]
    if "--version" in arguments:  # Hydra's own --version prints only Hydra's
        print(version_line())
        return
    reordered = flags_first(arguments)
    if reordered is not None:
        # Hydra's parser reads one run of overrides: one after a flag is "unrecognized" (argparse's word)
        sys.exit(f"taskvec-ir: flags go before the overrides (key=value); run: taskvec-ir {shlex.join(reordered)}")
    run()


def version_line() -> str:
    """``taskvec-ir 0.1.0 (Hydra 1.3.8, Python 3.11.9)``: ours first, as ``--version`` prints it."""
    import platform
    from importlib.metadata import version

    return f"taskvec-ir {version('taskvec-ir')} (Hydra {hydra.__version__}, Python {platform.python_version()})"


def flags_first(arguments: list[str]) -> list[str] | None:
    """``arguments`` with every flag (and its value) before the overrides, where a flag stands between two
    overrides (``-m sweep=alpha --config-dir myconf dataset=mine``): argparse, as Hydra uses it, takes a single
    run of overrides and calls the rest unrecognized. None where the order is already one Hydra reads, or where
    something else is wrong (an unknown flag: Hydra's own message says so)."""
    from hydra._internal.utils import get_args_parser  # the parser hydra.main parses the command line with

    parsed, unread = get_args_parser().parse_known_args(arguments)
    if not unread or any(argument.startswith("-") for argument in unread):
        return None
    overrides, flags = [*parsed.overrides, *unread], []
    position = 0
    for argument in arguments:  # the overrides appear in the command in order; every other word is a flag's
        if position < len(overrides) and argument == overrides[position]:
            position += 1
        else:
            flags.append(argument)
    return [*flags, *overrides]


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def run(cfg: DictConfig) -> dict:
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
