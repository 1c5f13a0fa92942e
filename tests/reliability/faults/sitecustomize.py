"""Fault injection for taskvec-ir processes started by the reliability tests. Test code only: the package
never imports it, and it does nothing unless ``TASKVEC_IR_FAULTS`` is set.

A process started with this folder on ``PYTHONPATH`` imports this module at start-up (Python's
``sitecustomize`` hook, which also reaches Hydra's joblib workers); once ``taskvec_ir.models.scoring`` is imported,
the bi-encoder's encoding step is wrapped. ``TASKVEC_IR_FAULTS`` is a comma-separated list of
``<trial>:<fault>``: the Optuna trial number the fault hits (read from the job's ``trial=<n>`` override), or
``*`` for every job. Faults:

- ``sigkill``: encode the documents, then SIGKILL the process that runs the trial (killed mid-scoring);
- ``oom``: raise ``torch.OutOfMemoryError`` at the first encoding, as CUDA does;
- ``nan``: the embeddings come out NaN, so the model's scores are not finite;
- ``hang``: the first encoding never ends (a stuck trial, for scancel and time limits);
- ``bug``: raise a plain ``ValueError`` at the first encoding (a bug of ours, not a user error);
- ``enospc``: every result written into the job's folder (through ``taskvec_ir.storage.outputs.atomic_path``) fails
  as on a full disk (the cache, elsewhere, still works).
"""

import errno
import importlib.abc
import importlib.machinery
import os
import signal
import sys
import time

FAULTS = dict(item.split(":", 1) for item in os.environ.get("TASKVEC_IR_FAULTS", "").split(",") if ":" in item)


def _trial() -> str | None:
    try:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            for override in HydraConfig.get().overrides.task:
                if override.startswith("trial="):
                    return override.split("=", 1)[1]
    except Exception:  # noqa: BLE001 - outside a Hydra job: only "*" faults apply
        pass
    return None


def _job_dir() -> str:
    try:
        from hydra.core.hydra_config import HydraConfig

        return os.path.realpath(HydraConfig.get().runtime.output_dir)
    except Exception:  # noqa: BLE001 - not inside a Hydra job
        return "/nonexistent"


def _fault() -> str | None:
    return FAULTS.get(_trial() or "", FAULTS.get("*"))


def _patch_outputs(outputs) -> None:
    class FullDiskOs:
        """``os`` for taskvec_ir.storage.outputs, whose ``replace`` (the commit of an atomic write) fails in the
        job dir."""

        def __getattr__(self, name):
            return getattr(os, name)

        @staticmethod
        def replace(src, dst):
            if _fault() == "enospc" and os.path.realpath(dst).startswith(_job_dir() + os.sep):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(src))
            return os.replace(src, dst)

    outputs.os = FullDiskOs()


def _patch(scoring) -> None:
    import torch

    encode = scoring.BiEncoderScorer.encode

    def faulty_encode(self, texts):
        fault = _fault()
        if fault == "hang":
            sys.stderr.write(f"fault injection: process {os.getpid()} hangs\n")
            sys.stderr.flush()
            time.sleep(3600)
        if fault == "bug":
            raise ValueError("an injected bug")
        if fault == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)")
        vectors = encode(self, texts)
        if fault == "sigkill":
            sys.stderr.write(f"fault injection: SIGKILL to {os.getpid()} mid-scoring\n")
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        if fault == "nan":
            return vectors * float("nan")
        return vectors

    scoring.BiEncoderScorer.encode = faulty_encode


class _PatchOnImport(importlib.abc.MetaPathFinder):
    patches = {"taskvec_ir.models.scoring": _patch, "taskvec_ir.storage.outputs": _patch_outputs}

    def find_spec(self, name, path, target=None):
        if name not in self.patches:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module):
            exec_module(module)
            self.patches[name](module)

        spec.loader.exec_module = exec_and_patch
        return spec


if FAULTS:
    sys.meta_path.insert(0, _PatchOnImport())
