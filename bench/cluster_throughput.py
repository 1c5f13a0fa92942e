"""Benchmark 6: trials per hour of one sweep on this machine: local processes, SLURM jobs, SLURM worker jobs.

    sudo make cluster-up && TASKVEC_IR_MIRROR=../shared/datasets .venv/bin/python bench/cluster_throughput.py \
        [--trials 6] [--setups local2,slurm1,slurm2,local1,worker1]

The same sweep each time: `sweep=alpha` on the demo triple, SciFact dev (5 %, 40 queries), BM25 top-10,
N_TRIALS trials, no final evaluation, W&B offline, a result cache warmed by one trial first (BM25 candidates,
τ), and a sampler seed of its own for each set-up (a trial's seed is the sweep's plus its number), so that
every trial does the same work: an α no other trial scored. The set-ups (``--setups``, all by default):
- local2: `launcher=local` (Hydra's joblib launcher), two trials at a time;
- slurm1: `launcher=slurm`, one sweeper submitting one trial at a time: the per-job cost of SLURM and a fresh process;
- slurm2: `launcher=slurm`, two sweepers at once sharing one PostgreSQL study, one trial at a time each: two nodes;
- local1: `launcher=local`, one trial at a time: one local worker;
- worker1: `launcher=slurm hydra.sweeper.worker_jobs=1`: one SLURM job runs every trial in one process.
Needs the cluster servers (scripts/cluster-up.sh, as root). Prints wall time and trials per hour, and the ratios
between the set-ups measured in this run.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
SETUPS = {
    "local2": "launcher=local, 2 processes",
    "slurm1": "launcher=slurm, 1 worker",
    "slurm2": "launcher=slurm, 2 workers, one study",
    "local1": "launcher=local, 1 process",
    "worker1": "launcher=slurm, 1 worker job (worker_jobs=1)",
}


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--setups", default=",".join(SETUPS), help=f"comma-separated, of {', '.join(SETUPS)}")
    args = parser.parse_args()
    chosen = args.setups.split(",")
    if unknown := set(chosen) - set(SETUPS):
        parser.error(f"unknown set-ups {sorted(unknown)}: choose from {', '.join(SETUPS)}")
    found = servers()
    storage, partition = found["OPTUNA_STORAGE"], found["SLURM_PARTITION"]
    work = Path(tempfile.mkdtemp(prefix="throughput-"))
    # The password reaches libpq through PGPASSFILE (storage URLs hold none), for the sweepers and their jobs.
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env["PGPASSFILE"] = found["PGPASSFILE"]

    def study() -> str:
        return f"bench-{uuid.uuid4().hex[:10]}"

    n = f"hydra.sweeper.n_trials={args.trials}"

    def run(setup: str, seed: int, *overrides: str) -> list[str]:
        return sweep(work, study(), storage, seed, n, *overrides, f"hydra.sweep.dir={work / setup}")

    # Warm-up: one trial fills the cache with what every trial shares.
    timed([sweep(work, study(), storage, 0, "hydra.sweeper.n_trials=1", f"hydra.sweep.dir={work / 'warm'}")], env)
    shared = study()
    commands = {
        "local2": lambda: [run("local2", 1000, "launcher=local", "hydra.launcher.n_jobs=2")],
        "slurm1": lambda: [run("slurm1", 2000, *slurm(partition))],
        "slurm2": lambda: [
            sweep(work, shared, storage, 3000, n, *slurm(partition), f"hydra.sweep.dir={work / f's2-{i}'}")
            for i in (1, 2)
        ],
        "local1": lambda: [run("local1", 4000, "launcher=local", "hydra.launcher.n_jobs=1")],
        "worker1": lambda: [run("worker1", 5000, *slurm(partition), "hydra.sweeper.worker_jobs=1")],
    }
    seconds = {setup: timed(commands[setup](), env) for setup in chosen}
    print(f"sweep=alpha, minilm_demo, SciFact dev (40 queries), top-10, {args.trials} trials, warm cache\n")
    print(f"{'set-up':<46} {'seconds':>8} {'trials/hour':>12}")
    for setup, wall in seconds.items():
        print(f"{SETUPS[setup]:<46} {wall:8.1f} {args.trials * 3600 / wall:12.0f}")
    ratios = [
        ("2 SLURM workers / 1", "slurm1", "slurm2"),
        ("1 SLURM worker / local", "local2", "slurm1"),
        ("2 SLURM workers / local", "local2", "slurm2"),
        ("1 SLURM worker job (worker_jobs=1) / 1 local process", "local1", "worker1"),
        ("1 SLURM worker job / 1 SLURM job per trial", "slurm1", "worker1"),
    ]
    print()
    for name, baseline, measured in ratios:  # trials per hour of `measured` over those of `baseline`
        if baseline in seconds and measured in seconds:
            print(f"{name}: {seconds[baseline] / seconds[measured]:.2f}× the trials per hour")


if __name__ == "__main__":
    main()
