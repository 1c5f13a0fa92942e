"""Helpers of the cluster tests: the servers' settings, sweep commands on SLURM, and checks against the study."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import optuna

REPO = Path(__file__).resolve().parents[2]
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
FAULTS_DIR = REPO / "tests" / "reliability" / "faults"
# Cranfield has no dev split: the tests carve one out of its queries.
CRANFIELD_DEV = ["dataset=cranfield", "+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}"]


@dataclass(frozen=True)
class Cluster:
    storage: str  # OPTUNA_STORAGE: a PostgreSQL database for Optuna, its URL without the password
    partition: str  # SLURM_PARTITION
    password_file: Path  # PGPASSFILE: the database's password, for libpq

    @property
    def password(self) -> str:
        return self.password_file.read_text().strip().rpartition(":")[2]

    def study(self, name: str) -> optuna.Study:
        return optuna.load_study(study_name=name, storage=self.storage)

    def trials(self, name: str, *states: optuna.trial.TrialState) -> list[optuna.trial.FrozenTrial]:
        return self.study(name).get_trials(deepcopy=False, states=states or None)


def job_name(study: str) -> str:
    """The SLURM job name of a test sweep's jobs (what squeue -n finds)."""
    return f"tvir-{study}"


def sweep_command(
    cluster: Cluster, study: str, work: Path, triple: dict, n_trials: int, timeout_min: int = 10, *overrides: str
) -> list:
    """A sweep of ``n_trials`` on Cranfield's dev carve-out into ``work/sweep`` (cache in ``work/cache``), without a
    final evaluation, each trial a SLURM job on the test partition with one CPU and little memory (two run at
    once here), named ``job_name(study)``."""
    return [
        str(TASKVEC_IR),
        "-m",
        "sweep=alpha",
        f"hydra.sweep.dir={work / 'sweep'}",
        f"hydra.sweeper.storage={cluster.storage}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.n_trials={n_trials}",
        "sweep.final_evaluation=false",
        "retriever.top_k=10",
        f"cache.dir={work / 'cache'}",
        "model.scorer.show_progress=false",
        *(f"model.{role}={path}" for role, path in triple.items()),
        *CRANFIELD_DEV,
        "launcher=slurm",
        f"hydra.launcher.partition={cluster.partition}",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=2",
        f"hydra.launcher.timeout_min={timeout_min}",
        "hydra.launcher.signal_delay_s=5",
        "hydra.launcher.array_parallelism=2",
        f"hydra.launcher.name={job_name(study)}",
        *overrides,
    ]


def process_env(mirror_dir: Path, faults: str | None = None) -> dict[str, str]:
    """A sweeper's environment, which sbatch hands on to its jobs; with ``faults``, the fault-injection hook
    (tests/reliability/faults) in every job."""
    env = {**os.environ, "TASKVEC_IR_MIRROR": str(mirror_dir), "OMP_NUM_THREADS": "1"}
    if faults:
        env["TASKVEC_IR_FAULTS"] = faults
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS_DIR), os.environ.get("PYTHONPATH")]))
    return env


def start(command: list, env: dict, log: Path, cwd: Path | None = None) -> subprocess.Popen:
    """``command`` in the background, its output in ``log`` (read while it runs, e.g. by ``wait_for``)."""
    with open(log, "w") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, stdin=subprocess.DEVNULL
        )


def finish(process: subprocess.Popen, log: Path, timeout: float = 900) -> str:
    """The output of ``process`` once it has ended, which it must have done successfully."""
    process.wait(timeout=timeout)
    output = log.read_text()
    assert process.returncode == 0, output[-5000:]
    return output


def slurm_jobs(job_name: str, state: str = "RUNNING") -> list[str]:
    """Ids of this test's SLURM jobs in ``state`` (an array task's own id, as SLURM_JOB_ID gives it)."""
    result = subprocess.run(
        ["squeue", "-h", "-n", job_name, "-t", state, "-o", "%A"], capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def wait_for(condition, timeout: float, what: str, every: float = 1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def assert_no_trial_lost_or_counted_twice(cluster: Cluster, study: str, n_trials: int) -> list:
    """The study's complete trials: exactly ``n_trials``, each with its own job dir holding its metrics."""
    complete = cluster.trials(study, optuna.trial.TrialState.COMPLETE)
    assert len(complete) == n_trials, [(t.number, t.state) for t in cluster.trials(study)]
    job_dirs = [Path(t.user_attrs["job_dir"]) for t in complete]
    assert len(set(job_dirs)) == n_trials
    assert all((job_dir / "metrics.json").is_file() for job_dir in job_dirs)
    assert not cluster.trials(study, optuna.trial.TrialState.RUNNING)
    return complete
