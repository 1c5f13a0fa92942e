"""Benchmark 5: start-up of a trial job, which on SLURM is a fresh process for every trial.

    TASKVEC_IR_MIRROR=../shared/datasets .venv/bin/python bench/startup.py

One job of the demo triple (all-MiniLM-L6-v2 and its site-reliability vector) on Cranfield, BM25 top-10,
W&B disabled, in fresh processes:
- a first job fills the result cache (BM25, scores, τ);
- the same job again is a fully cached job, which is what a λ-only trial costs: its wall time against
  ``python -c "import torch"`` (each the fastest of REPEATS, ratio in this one run; goal ≤ 2×), and whether it
  imported any model library;
- a job at a new α (its scores not cached, τ cached): seconds from the process's start to the first forward
  pass of the model, and to its end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
REPEATS = 3  # timings are the best of this many: the machine may be shared, and the minimum is least noisy
MODEL_LIBRARIES = ("torch", "transformers", "sentence_transformers", "wandb")
# Runs the app in this process with a global forward pre-hook that writes the seconds since start at the first
# forward pass of any module (torch's public hook API); torch is imported by the job at that point anyway.
FIRST_FORWARD = """
import json, sys, time
start, marker = time.perf_counter(), sys.argv[1]
import torch
def first(module, args):
    out = open(marker, "w"); json.dump(time.perf_counter() - start, out); out.close(); handle.remove()
handle = torch.nn.modules.module.register_module_forward_pre_hook(first)
sys.argv = ["taskvec-ir", *sys.argv[2:]]
from taskvec_ir.app import main
main()
"""


def seconds(command: list[str], env: dict, stderr=subprocess.DEVNULL) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=stderr, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


def best(command: list[str], env: dict) -> float:
    return min(seconds(command, env) for _ in range(REPEATS))


def imported_libraries(command: list[str], env: dict) -> list[str]:
    """Which of MODEL_LIBRARIES ``command`` imports (Python's -X importtime report)."""
    result = subprocess.run(
        command, env={**env, "PYTHONPROFILEIMPORTTIME": "1"}, capture_output=True, text=True, check=True
    )
    lines = [line for line in result.stderr.splitlines() if line.startswith("import time")]
    modules = {line.rsplit("|", 1)[1].strip() for line in lines}
    return [name for name in MODEL_LIBRARIES if name in modules]


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    env = {
        **os.environ,
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "IR_DATASETS_HOME": str(work / "ir_datasets"),
        "MPLCONFIGDIR": os.environ.get("MPLCONFIGDIR", str(work / "mpl")),
    }
    job = [
        "dataset=cranfield",
        "retriever.top_k=10",
        "model.scorer.show_progress=false",
        f"cache.dir={work / 'cache'}",
        f"hydra.run.dir={work / 'run'}",
    ]
    taskvec_ir = [str(BIN / "taskvec-ir"), *job]
    first_job = seconds(taskvec_ir, env)
    torch_import = best([sys.executable, "-c", "import torch"], env)
    cached_job = best(taskvec_ir, env)
    libraries = imported_libraries(taskvec_ir, env)
    marker = work / "first_forward.json"
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", FIRST_FORWARD, str(marker), *job, "alpha.value=0.25"],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    new_alpha_job = time.perf_counter() - start
    first_forward = json.loads(marker.read_text())

    print(f"Cranfield, minilm_demo, top-10, W&B disabled; best of {REPEATS} where repeated\n")
    print(f"{'what':<58} {'seconds':>8}")
    rows = {
        "first job (fills the cache)": first_job,
        'python -c "import torch"': torch_import,
        "fully cached job (a λ-only trial)": cached_job,
        "new-α trial: process start to first forward pass": first_forward,
        "new-α trial: whole job": new_alpha_job,
    }
    for name, value in rows.items():
        print(f"{name:<58} {value:8.2f}")
    print(f"\nfully cached job / import torch: {cached_job / torch_import:.2f}× (goal ≤ 2×)")
    print(f"model libraries a fully cached job imports: {', '.join(libraries) or 'none'}")


if __name__ == "__main__":
    main()
