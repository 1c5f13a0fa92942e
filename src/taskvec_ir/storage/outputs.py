"""Writing results so that nothing half-written ever looks complete, with the permissions the umask allows."""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from taskvec_ir.errors import UserError

# What a user can do about a failed write, by errno.
_WRITE_HINTS = {
    errno.ENOSPC: "the disk is full: free space there or write elsewhere",
    errno.EDQUOT: "the disk quota is exhausted: free space there or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "the folder is not writable: fix its permissions or write elsewhere",
    errno.EPERM: "the folder is not writable: fix its permissions or write elsewhere",
}


class OutputError(OSError, UserError):
    """A result could not be written (disk full, read-only folder): the message names the file and the cause.

    Nothing was replaced: the file keeps its previous content (or stays absent), and no temporary file is
    left beside it."""


def _output_error(path: Path, error: OSError) -> OutputError:
    hint = _WRITE_HINTS.get(error.errno, error.strerror or str(error))
    return OutputError(error.errno, f"cannot write {path}: {hint} ({error.strerror or error})")


def umask_mode(mode: int) -> int:
    """``mode`` as the umask lets a new file or folder have it (``0o666`` under umask 022: ``0o644``): what ``open``
    gives a new file, and what a temporary file (mkstemp's 0600, mkdtemp's 0700) must be given before it is renamed
    into place, so that a co-author on a shared cluster reads the results. The umask is read from /proc where Linux
    shows it: ``os.umask`` can only read it by setting it, which another thread could see."""
    try:
        status = Path("/proc/self/status").read_text()
        mask = int(next(line for line in status.splitlines() if line.startswith("Umask:")).split()[1], 8)
    except (OSError, StopIteration):
        mask = os.umask(0o022)
        os.umask(mask)
    return mode & ~mask


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path beside ``path`` that replaces it only if the block finishes without error; the file has the
    permissions a plain ``open`` would give it (``umask_mode``).

    A write that fails (disk full, read-only folder) raises ``OutputError`` naming ``path``; the temporary
    file is removed and ``path`` keeps its previous content."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _output_error(path, error) from error
    try:
        os.fchmod(fd, umask_mode(0o666))
    finally:
        os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException as error:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(error, OSError) and not isinstance(error, OutputError):
            raise _output_error(path, error) from error
        raise


def write_json(data, path: Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")


def redact_url(url: str | None) -> str | None:
    """``url`` without the password it may carry (``postgresql://user:pw@db/optuna`` -> ``postgresql://user:***@db/optuna``),
    for logs and result files: a storage URL is configuration, its password a secret."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = f"{parts.username or ''}:***@{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class PasswordInURLError(UserError):
    """A storage URL holds a password (``refuse_password``)."""


def refuse_password(url: str | None, key: str) -> None:
    """Refuse a storage URL that carries a password (``user:pw@`` or ``?password=``), before anything is written.

    Whatever a command line or config holds ends up in every job's ``.hydra/`` files, its logs and W&B run (which
    ``wandb sync`` uploads), and a command line is visible to every user of the node in ``ps``. The database's
    own client finds the password instead: for PostgreSQL, libpq reads ``~/.pgpass``, ``PGPASSFILE``, a
    ``PGSERVICEFILE`` service or ``PGPASSWORD``."""
    parts = urlsplit(url or "")
    query = parse_qsl(parts.query)
    if parts.password is None and "password" not in dict(query):
        return
    host = parts.netloc.rpartition("@")[2]
    without = urlunsplit(
        parts._replace(
            netloc=f"{parts.username}@{host}" if parts.username else host,
            query=urlencode([(name, value) for name, value in query if name != "password"]),
        )
    )
    raise PasswordInURLError(
        f"{key} holds the database's password, which every job would write into its .hydra/ files and W&B run: give "
        f"the URL without it ({key}={without}) and the password to the database's client, for PostgreSQL a line "
        "host:port:database:user:password in ~/.pgpass (chmod 600) or in the file PGPASSFILE names (README, Sweeps)"
    )


FAILURE_FILE = "error.txt"  # in a job dir: why a job of a multirun failed (a table shows it)


def record_failure(job_dir: Path, error: BaseException) -> None:
    """Write why a job failed into its dir, as one line, for whoever runs many jobs (a table): a user error's
    message as it names what to fix, any other error with its type (a bug, whose traceback is in the job's log)."""
    message = " ".join(str(error).split()) or type(error).__name__
    line = message if isinstance(error, UserError) else f"{type(error).__name__}: {message}"
    with atomic_path(Path(job_dir) / FAILURE_FILE) as tmp:
        tmp.write_text(line + "\n")
