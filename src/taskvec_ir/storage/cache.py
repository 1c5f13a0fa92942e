"""A content-addressed cache for the expensive, reusable results of a run.

What a sweep repeats must not be recomputed: BM25 candidates (per dataset, split, analyzer and
parameters), the task vector (per triple) and model scores (per triple, α, split and scorer settings).
Each entry's key is a hash of exactly what determines it (``cache_key``), so a change in any input is a
new entry and a stale result is never served. Entries are written to a temporary file and renamed into
place, so parallel workers can share the folder and an interrupted write leaves nothing behind. An entry
that cannot be read (truncated, corrupted) is logged, removed and recomputed. A run entry that cannot be
written (disk full, read-only cache) is logged and skipped: the job goes on with the value it computed.

Layout: ``<cache.dir>/<kind>/<key>.json`` for runs, ``<cache.dir>/<kind>/<key>/`` (safetensors shards and a
manifest) for task vectors. Clear it with ``rm -r`` or ``taskvec-ir cache.clear=true``.
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path

from taskvec_ir.storage.outputs import OutputError, atomic_path, umask_mode

log = logging.getLogger(__name__)
_MANIFEST = "manifest.json"
# Part of the key of every result the pipeline caches: bump it when a change of code changes cached results, so
# that old entries are not served.
CACHE_VERSION = 1


def cache_key(**parts) -> str:
    """A stable hash of ``parts`` (JSON-serialisable values; mappings in any key order)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def text_digest(texts: Mapping[str, str] | Mapping[str, Mapping[str, float]]) -> str:
    """A hash of an id -> value mapping (queries, or a run), independent of insertion order."""
    return cache_key(items=sorted((key, texts[key]) for key in texts))


def file_digest(path: Path) -> str:
    """A file's identity by its content, so that a copied or moved file keeps it."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        while block := stream.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()[:32]


def checkpoint_fingerprint(folder: Path) -> str:
    """Identity of a checkpoint's weights: file names, sizes and modification times.

    Reading every byte of a multi-GB checkpoint to hash it would cost more than most runs; a Hub
    snapshot's folder name is already its commit hash, and a local checkpoint that is rewritten gets a
    new modification time.
    """
    folder = Path(folder).resolve()
    files = sorted(
        p for p in folder.iterdir() if p.suffix in {".safetensors", ".bin"} or p.name.endswith(".index.json")
    )
    return cache_key(folder=str(folder), files=[(p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in files])


class Cache:
    """Read-through cache; ``root=None`` disables it (every lookup is a miss, nothing is written)."""

    def __init__(self, root: str | Path | None):
        self.root = Path(root).expanduser() if root else None
        self.stats: Counter[str] = Counter()
        self._scratch_dir: Path | None = None  # holds folder entries when there is no root

    def json(self, kind: str, key: str, compute: Callable[[], object]):
        """The cached JSON value for (kind, key), computing and storing it on a miss."""
        if self.root is None:
            self.stats[f"{kind}.miss"] += 1
            return compute()
        path = self.root / kind / f"{key}.json"
        if path.exists():
            try:
                value = json.loads(path.read_text())
                self.stats[f"{kind}.hit"] += 1
                return value
            except (OSError, ValueError) as error:  # truncated or corrupted: recompute it
                log.warning("Cache entry %s is damaged (%s): recomputing it", path, error)
                path.unlink(missing_ok=True)
        self.stats[f"{kind}.miss"] += 1
        value = compute()
        try:
            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps(value))
        except OSError as error:  # a full or read-only cache must not cost the result just computed
            self.stats[f"{kind}.unsaved"] += 1
            log.warning("Could not store cache entry %s (%s): going on without it", path, error)
        return value

    def entry(self, kind: str, key: str) -> Path | None:
        """Where the stored entry (kind, key) lies (a JSON file or a folder), or None when there is none."""
        if self.root is None:
            return None
        for path in (self.root / kind / f"{key}.json", self.root / kind / key):
            if path.exists():
                return path
        return None

    def folder(self, kind: str, key: str, build: Callable[[Path], None]) -> Path:
        """The cached folder for (kind, key), filled by ``build(folder)`` on a miss.

        A folder is complete when its manifest (file names and sizes) matches what is on disk; anything
        else is damaged and rebuilt. Without a cache root the folder lives in a temporary directory
        for the life of the process.
        """
        root = self.root or self._scratch()
        path = root / kind / key
        if _manifest_matches(path):
            self.stats[f"{kind}.hit"] += 1
            return path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            (root / ".locks").mkdir(exist_ok=True)
            lock = open(root / ".locks" / f"{kind}-{key}", "a")  # noqa: SIM115 (held until the entry is in place)
        except OSError as error:
            raise _unwritable(path, error) from error
        # One process builds an entry (a BM25 index may take an hour); the others wait for it, then read it.
        with lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _manifest_matches(path):
                self.stats[f"{kind}.hit"] += 1
                return path
            if path.exists():
                log.warning("Cache entry %s is damaged: rebuilding it", path)
                _discard(path)
            self.stats[f"{kind}.miss"] += 1
            try:
                staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{key}."))
                staging.chmod(umask_mode(0o777))  # mkdtemp's 0700 would keep the entry from the cache's other users
            except OSError as error:
                raise _unwritable(path, error) from error
            try:
                build(staging)
                files = {p.name: p.stat().st_size for p in staging.iterdir()}
                (staging / _MANIFEST).write_text(json.dumps(files))
                os.replace(staging, path)
            except OSError as error:
                raise _unwritable(path, error) from error
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return path

    def _scratch(self) -> Path:
        if self._scratch_dir is None:
            self._scratch_dir = Path(tempfile.mkdtemp(prefix="taskvec-ir-"))
            atexit.register(shutil.rmtree, self._scratch_dir, ignore_errors=True)
        return self._scratch_dir

    def clear(self) -> None:
        if self.root is not None and self.root.exists():
            shutil.rmtree(self.root)
            log.info("Cleared the cache at %s", self.root)


def _unwritable(path: Path, error: OSError) -> OutputError:
    return OutputError(
        error.errno,
        f"cannot write the cache entry {path} ({error.strerror}): "
        "free space under cache.dir or point cache.dir elsewhere",
    )


def _discard(path: Path) -> None:
    """Remove a damaged folder entry: renamed aside first (atomic), so that no reader ever sees it half
    deleted. If a parallel worker had just replaced it with a complete entry, that one is put back."""
    aside = path.with_name(f".{path.name}.damaged.{os.getpid()}")
    try:
        os.replace(path, aside)
    except OSError:  # gone already (another worker moved it aside): nothing of ours to remove
        return
    if _manifest_matches(aside):
        try:
            os.replace(aside, path)
            return
        except OSError:  # yet another complete entry is in place: ours is surplus
            pass
    shutil.rmtree(aside, ignore_errors=True)


def _manifest_matches(path: Path) -> bool:
    try:
        files = json.loads((path / _MANIFEST).read_text())
        return all((path / name).stat().st_size == size for name, size in files.items())
    except (OSError, ValueError):
        return False
