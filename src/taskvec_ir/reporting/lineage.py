"""What a run used and what it made, named as W&B artifacts name them: plain data, without W&B.

Stages say which cache entries and checkpoints a job read (``Experiment.inputs``); ``tracking`` declares
them as the W&B run's inputs, so W&B's lineage graph links every trial of a sweep to the candidates and task
vector they share. Large inputs (a task vector, a checkpoint) are recorded by reference to where they lie,
without hashing their bytes: their names already carry their content-addressed cache keys.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# The packages whose versions decide a run's numbers (recorded with every run).
PACKAGES = (
    "taskvec-ir",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "safetensors",
    "hydra-core",
    "optuna",
    "wandb",
    "ir_measures",
    "pytrec_eval-terrier",
    "ir_datasets",
    "bm25s",
    "rank_bm25",
    "nltk",  # the lucene analyzer's Porter stemmer and word breaks: they decide BM25's terms
    "regex",
    "numpy",
)


@dataclass(frozen=True)
class Artifact:
    """A W&B artifact: ``name`` (letters, digits, ``-_.``), ``type``, its files (``path``: a file or a folder), and
    how W&B records them: copied into W&B (``upload``: small outputs such as a report), or referenced where they
    lie, hashed (``checksum``) or, for large content-addressed entries, by path only."""

    name: str
    type: str
    path: Path
    metadata: dict = field(default_factory=dict)
    checksum: bool = True
    upload: bool = False
    files: tuple[str, ...] = ()  # with upload and a folder: only these of its files (relative paths); all if empty

    def __post_init__(self):  # a study or table name may hold '/' or '@', which W&B refuses in a name
        object.__setattr__(self, "name", re.sub(r"[^A-Za-z0-9_.-]", "-", self.name))


def _git(folder: Path) -> dict | None:
    """The commit of the git work tree holding ``folder``, and whether the tree has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        return {
            "root": git("rev-parse", "--show-toplevel"),
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):  # no git, or not a work tree
        return None


@functools.cache
def code_provenance(working_dir: str) -> dict:
    """What code made a run: the versions of ``PACKAGES``, the git commit of the working directory (the user's
    project, as W&B records it) and of taskvec-ir's own source tree when it runs from a checkout."""
    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            packages[name] = None
    here = Path(__file__).resolve()
    source = None if "site-packages" in here.parts else _git(here.parent)  # a checkout, not an installed copy
    return {"packages": packages, "git": _git(Path(working_dir)), "taskvec_ir_source": source}
