"""What a sweep needs of Hydra's launchers: a job the scheduler refused is a config error, a job that died is a lost
job (its trials failed, the sweep goes on), and a worker job runs its trials in its own process."""

from __future__ import annotations

import copy
import shutil

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.utils import configure_log
from omegaconf import DictConfig, open_dict, read_write

from taskvec_ir.errors import UserError


class LauncherConfigError(UserError):
    """The launcher could not submit a job (sbatch refused it): a setting of hydra.launcher to fix."""


def check_scheduler(launcher: DictConfig) -> None:
    """A launcher that submits to SLURM (``launcher=slurm``) on a machine without SLURM's commands, refused before
    anything runs (submitit looks for ``srun`` only when it submits the first job)."""
    if str(launcher.get("_target_", "")).endswith(".SlurmLauncher") and shutil.which("srun") is None:
        raise LauncherConfigError(
            "launcher=slurm submits jobs with SLURM's srun and sbatch, which this machine does not have (not on "
            "PATH): run the command on the cluster's login node, or drop launcher=slurm to run here "
            "(launcher=local runs jobs side by side)"
        )


def launch(launcher, overrides: list, job_idx: int) -> list:
    """``launcher``'s results for the jobs of ``overrides``; a job that the scheduler refused to take is a config
    error."""
    try:
        return launcher.launch(overrides, initial_job_idx=job_idx)
    except Exception as error:
        message = str(error)
        if "sbatch: error" not in message:
            raise
        detail = next(line for line in message.splitlines() if "sbatch: error" in line).strip()
        hint = (
            "this partition has no GPUs to give: set hydra.launcher.gpus_per_node=0 (or null)"
            if "generic resource" in detail
            else "fix hydra.launcher (partition, timeout_min, cpus, memory)"
        )
        raise LauncherConfigError(f"SLURM refused the job ({detail}): {hint}") from None


def job_lost_errors() -> tuple[type[BaseException], ...]:
    """What the launchers raise when a job's process died (killed, cancelled, past its time limit): submitit's
    for SLURM, loky's for joblib. An exception raised inside a job is not among them: Hydra returns it in the
    job's result, and any other exception of the launcher is a bug that keeps its traceback."""
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    from submitit.core.utils import UncompletedJobError

    return (UncompletedJobError, TerminatedWorkerError)


class InProcessLauncher:
    """A worker's launcher: its trials in its own process through Hydra's basic launcher (``hydra/launcher=basic``),
    composed from the sweep's config as every launcher's jobs. The worker's own log is back after each batch
    (``run_job`` leaves logging set to the last trial's ``app.log``)."""

    def __init__(self, hydra_context, task_function, sweep_config: DictConfig):
        config = copy.deepcopy(sweep_config)
        with read_write(config.hydra), open_dict(config.hydra):
            config.hydra.launcher = ConfigStore.instance().load("hydra/launcher/basic.yaml").node
        self.basic = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config
        )

    def launch(self, job_overrides: list, initial_job_idx: int) -> list:
        try:
            return self.basic.launch(job_overrides, initial_job_idx=initial_job_idx)
        finally:
            worker = HydraConfig.get()  # the worker job's (run_job restores it after each trial)
            configure_log(worker.job_logging, worker.verbose)
