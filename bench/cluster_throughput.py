"""Benchmark 6: trials per hour of one sweep on this machine: local processes, one SLURM worker, two SLURM workers.

    sudo make cluster-up && TASKVEC_IR_MIRROR=../shared/datasets .venv/bin/python bench/cluster_throughput.py

The same sweep each time: `sweep=alpha` on the demo triple, SciFact dev (5 %, 40 queries), BM25 top-10,
N_TRIALS trials, no final evaluation, W&B offline, a result cache warmed by one trial first (BM25 candidates,
τ), and a sampler seed of its own for each set-up (a trial's seed is the sweep's plus its number), so that
every trial does the same work: an α no other trial scored. Three set-ups:
- `launcher=local` (Hydra's joblib launcher), two trials at a time;
- `launcher=slurm`, one sweeper submitting one trial at a time: the per-job cost of SLURM and a fresh process;
- `launcher=slurm`, two sweepers at once sharing one PostgreSQL study, one trial at a time each: two nodes.
Needs the cluster servers (scripts/cluster-up.sh, as root). Prints wall time and trials per hour, and the ratios.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
N_TRIALS = 6


def servers() -> dict[str, str]:
    result = subprocess.run([str(REPO / "scripts" / "cluster-up.sh")], capture_output=True, text=True, check=True)
    return dict(line.split("=", 1) for line in result.stdout.splitlines())


def sweep(work: Path, study: str, storage: str, seed: int, *overrides: str) -> list[str]:
    return [
        str(TASKVEC_IR),
        "-m",
        "sweep=alpha",
        "dataset.splits.dev.fraction=0.05",
        "retriever.top_k=10",
        "model.scorer.show_progress=false",
        "sweep.final_evaluation=false",
        f"cache.dir={work / 'cache'}",
        f"hydra.sweeper.storage={storage}",
        f"hydra.sweeper.study_name={study}",
        f"hydra.sweeper.sampler.seed={seed}",
        *overrides,
    ]


def slurm(partition: str) -> list[str]:
    return [
        "launcher=slurm",
        f"hydra.launcher.partition={partition}",
        "hydra.launcher.gpus_per_node=0",
        "hydra.launcher.cpus_per_task=1",
        "hydra.launcher.mem_gb=4",
        "hydra.launcher.timeout_min=30",
        "hydra.launcher.array_parallelism=1",
    ]


def timed(commands: list[list[str]], env: dict) -> float:
    """Seconds until all ``commands``, started at once, have ended."""
    start = time.perf_counter()
    processes = [
        subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for command in commands
    ]
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"a sweep failed: {' '.join(process.args)}")
    return time.perf_counter() - start


def main() -> None:
    found = servers()
    storage, partition = found["OPTUNA_STORAGE"], found["SLURM_PARTITION"]
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}

    def study() -> str:
        return f"bench-{uuid.uuid4().hex[:10]}"

    # Warm-up: one trial fills the cache with what every trial shares.
    timed([sweep(work, study(), storage, 0, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={work / 'warm'}")], env)
    n = f"hydra.sweeper.n_trials={N_TRIALS}"
    local_launcher = ["launcher=local", "hydra.launcher.n_jobs=2"]
    local = timed([sweep(work, study(), storage, 1000, n, *local_launcher, f"hydra.sweep.dir={work / 'l'}")], env)
    one = timed([sweep(work, study(), storage, 2000, n, *slurm(partition), f"hydra.sweep.dir={work / 's1'}")], env)
    shared = study()
    two = timed(
        [
            sweep(work, shared, storage, 3000, n, *slurm(partition), f"hydra.sweep.dir={work / f's2-{i}'}")
            for i in (1, 2)
        ],
        env,
    )
    rows = {
        "launcher=local, 2 processes": local,
        "launcher=slurm, 1 worker": one,
        "launcher=slurm, 2 workers, one study": two,
    }
    print(f"sweep=alpha, minilm_demo, SciFact dev (40 queries), top-10, {N_TRIALS} trials, warm cache\n")
    print(f"{'set-up':<40} {'seconds':>8} {'trials/hour':>12}")
    for name, seconds in rows.items():
        print(f"{name:<40} {seconds:8.1f} {N_TRIALS * 3600 / seconds:12.0f}")
    print(
        f"\n2 SLURM workers / 1: {one / two:.2f}× the trials per hour; "
        f"1 SLURM worker / local: {local / one:.2f}×; 2 SLURM workers / local: {local / two:.2f}×"
    )


if __name__ == "__main__":
    main()
