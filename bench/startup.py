"""Benchmark 5: cold against warm start of a job (imports, ranx's numba compilation, matplotlib's font scan).

    TASKVEC_IR_MIRROR=../shared/datasets .venv/bin/python bench/startup.py

Runs one small job (Cranfield, a tiny bi-encoder, BM25 top-10, W&B disabled) in fresh processes: cold
(empty numba and matplotlib caches), then warm (the same caches again); the result cache is new each time
so both do the same work. Also times the bare import of the entry point and ``taskvec-ir --help``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from tiny_models import tiny_triple  # noqa: E402  (the tests' checkpoint builder)

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"


def timed(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    return time.perf_counter() - start


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="startup-"))
    triple = tiny_triple(work / "triple", "bi_encoder")
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(work / "numba"),
        "MPLCONFIGDIR": str(work / "mpl"),
        "WANDB_MODE": "disabled",
        "HF_HUB_OFFLINE": "1",
        "IR_DATASETS_HOME": str(work / "ir_datasets"),
    }
    job = [
        str(TASKVEC_IR),
        "dataset=cranfield",
        "retriever.top_k=10",
        "model.scorer.show_progress=false",
        *(f"model.{role}={path}" for role, path in triple.items()),
    ]
    times = {}
    for run in ("cold", "warm", "warm again"):
        times[f"job, {run} (numba/matplotlib caches)"] = timed(
            [*job, f"hydra.run.dir={work / run}", f"cache.dir={work / run / 'cache'}"], env
        )
    times["import taskvec_ir.app"] = timed([sys.executable, "-c", "import taskvec_ir.app"], env)
    times["taskvec-ir --help"] = timed([str(TASKVEC_IR), "--help"], env)
    print(f"\n{'what':<44} {'seconds':>8}")
    for name, seconds in times.items():
        print(f"{name:<44} {seconds:8.2f}")
    cold, warm = times["job, cold (numba/matplotlib caches)"], times["job, warm (numba/matplotlib caches)"]
    print(f"cold − warm: {cold - warm:.1f} s paid once per machine (cold / warm = {cold / warm:.1f}×)")


if __name__ == "__main__":
    main()
