"""What the sweeper takes from the launchers' errors: a lost job is a failed trial, anything else a bug; and a SLURM
launcher where there is no SLURM, refused up front."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from taskvec_ir.runs.sweeping.launchers import LauncherConfigError, check_scheduler, job_lost_errors


def test_only_a_launchers_lost_job_counts_as_lost():
    from joblib.externals.loky.process_executor import TerminatedWorkerError
    from submitit.core.utils import FailedJobError

    lost = job_lost_errors()
    assert issubclass(FailedJobError, lost) and issubclass(TerminatedWorkerError, lost)
    assert not issubclass(ValueError, lost) and not issubclass(KeyError, lost)  # a bug keeps its traceback


def test_launcher_slurm_without_slurm_is_one_line_naming_the_fix(tmp_path):
    """On a machine without SLURM's commands (PATH without srun), ``launcher=slurm`` is refused before the sweep
    makes anything, in one line, not in submitit's traceback from its first submission."""
    command = [str(Path(sys.executable).parent / "taskvec-ir"), "-m", "sweep=alpha", "launcher=slurm"]
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}  # the venv's commands only
    refused = subprocess.run(
        [*command, f"hydra.sweep.dir={tmp_path / 'sweep'}"], env=env, capture_output=True, text=True, timeout=120
    )
    assert refused.returncode == 1
    assert refused.stderr.splitlines() == [
        "taskvec-ir: launcher=slurm submits jobs with SLURM's srun and sbatch, which this machine does not have (not "
        "on PATH): run the command on the cluster's login node, or drop launcher=slurm to run here (launcher=local "
        "runs jobs side by side)"
    ]
    assert "Traceback" not in refused.stdout and not (tmp_path / "sweep").exists()


def test_a_slurm_launcher_is_checked_for_srun_and_others_are_not(tmp_path, monkeypatch):
    slurm = OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"})
    local = OmegaConf.create({"_target_": "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"})
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LauncherConfigError, match="launcher=slurm submits jobs with SLURM's srun"):
        check_scheduler(slurm)
    check_scheduler(local)
    srun = tmp_path / "srun"
    srun.write_text("#!/bin/sh\n")
    srun.chmod(0o755)
    check_scheduler(slurm)  # SLURM's commands are here
