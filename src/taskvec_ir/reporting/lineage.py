"""What a run used and what it made, named as W&B artifacts name them: plain data, without W&B.

Stages say which cache entries and checkpoints a job read (``Pipeline.inputs``); ``tracking`` declares
them as the W&B run's inputs, so W&B's lineage graph links every trial of a sweep to the candidates and task
vector they share. An artifact is named by what it is (``bm25-<dataset>-<split>``, ``task-vector-<model>``), so
that each new content is a new version of one name; the content-addressed cache key is its alias and metadata (an
output no cache entry holds, such as a job's TREC runs or a sweep's report, is logged with the key of its files'
content as alias: ``content_key``).
Large inputs (a task vector, a checkpoint) are recorded by reference to where they lie, without hashing their
bytes: the cache key already identifies their content.
"""

from __future__ import annotations

import functools
import importlib.metadata
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from taskvec_ir.storage.cache import cache_key, file_digest

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
    aliases: tuple[str, ...] = ()  # e.g. the cache key of this version's content

    def __post_init__(self):  # a study, table or model name may hold '/' or '@', which W&B refuses in a name
        object.__setattr__(self, "name", _wandb_name(self.name))
        object.__setattr__(self, "aliases", tuple(_wandb_name(alias) for alias in self.aliases))


def _wandb_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


def content_key(path: Path, files: Sequence[str] = ()) -> str:
    """The key of what ``path`` holds (a file; a folder's ``files``, or all its files), hashed as the cache hashes
    its entries: the alias of an output that no cache entry names, the same for the same bytes wherever they lie."""
    if path.is_file():
        return cache_key(file=file_digest(path))
    names = list(files) or sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())
    return cache_key(files={name: file_digest(path / name) for name in names if (path / name).is_file()})


def _git(folder: Path) -> dict | None:
    """The commit of the git work tree holding ``folder``, and whether the tree has uncommitted changes."""

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(folder), *args], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        found = {
            "root": git("rev-parse", "--show-toplevel"),
            "commit": git("rev-parse", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
        }
    except (OSError, subprocess.SubprocessError):  # no git, or not a work tree
        return None
    try:
        found["remote_url"] = _without_credentials(git("remote", "get-url", "origin"))
    except subprocess.SubprocessError:  # a tree with no origin
        found["remote_url"] = None
    return found


def _without_credentials(url: str) -> str:
    """A remote URL without the user or token it may carry (``https://<token>@github.com/...``)."""
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url  # scp-like ``git@host:path`` names a user, not a secret
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


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
