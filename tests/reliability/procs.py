"""Running the ``taskvec-ir`` command as a user does, for the reliability tests: real Cranfield through the
offline mirror, and fault injection into those processes (``faults/sitecustomize.py``).

Every process gets the hermetic environment of ``tests/conftest.py`` (temporary HOME, caches, W&B and
ir_datasets folders); what a test changes, it passes as ``env`` (``None`` unsets a variable).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"  # the installed console script
FAULTS_DIR = Path(__file__).parent / "faults"
# Cranfield has no dev split: a seeded 30% of its queries serves as one.
CRANFIELD_DEV = ["dataset=cranfield", "+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}"]
# Recognisable fake secrets: no file a run writes may contain them.
FAKE_WANDB_KEY = "d3adb33f" * 5
FAKE_HF_TOKEN = "hf_taskvecFAKEtoken0123456789abcdefXYZ"


def model_overrides(triple: dict[str, Path]) -> list[str]:
    return [f"model.{role}={path}" for role, path in triple.items()] + ["model.scorer.show_progress=false"]


def process_env(mirror_dir: Path, env: dict | None = None, faults: str | None = None) -> dict[str, str]:
    """The environment of a taskvec-ir process: the session's, the mirror, ``env`` (None unsets), and with
    ``faults`` the fault-injection hook (see faults/sitecustomize.py)."""
    # One thread per process: the tests run two processes at a time on two cores, and oversubscribed torch
    # threads spin (measured: a tiny model's scoring took 19 s instead of 1 s under load).
    speed = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    extra = {**speed, "TASKVEC_IR_MIRROR": str(mirror_dir), **(env or {})}
    if faults:
        extra["TASKVEC_IR_FAULTS"] = faults
        extra["PYTHONPATH"] = os.pathsep.join(filter(None, [str(FAULTS_DIR), os.environ.get("PYTHONPATH")]))
    return {key: value for key, value in {**os.environ, **extra}.items() if value is not None}


def taskvec_ir_command(out_dir: Path, overrides: Sequence[str], multirun: bool = False) -> list[str]:
    where = f"hydra.sweep.dir={out_dir}" if multirun else f"hydra.run.dir={out_dir}"
    return [str(TASKVEC_IR), *(["-m"] if multirun else []), where, *overrides]


def run_taskvec_ir(
    out_dir: Path,
    overrides: Sequence[str],
    mirror_dir: Path,
    *,
    multirun: bool = False,
    env: dict | None = None,
    faults: str | None = None,
    timeout: int = 600,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        taskvec_ir_command(out_dir, overrides, multirun),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
        env=process_env(mirror_dir, env, faults),
    )


def start_taskvec_ir(
    out_dir: Path,
    overrides: Sequence[str],
    mirror_dir: Path,
    *,
    multirun: bool = False,
    env: dict | None = None,
    faults: str | None = None,
) -> subprocess.Popen:
    return subprocess.Popen(
        taskvec_ir_command(out_dir, overrides, multirun),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
        env=process_env(mirror_dir, env, faults),
    )


def files_under(*roots: Path) -> list[Path]:
    return [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
