"""A sweep's study in its Optuna storage: opened or created by whichever sweeper comes first, and every call to the
storage retried while it does not answer (a database restart); a storage that refuses the login is told at once."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy.exc

from taskvec_ir.errors import UserError

log = logging.getLogger(__name__)
# A database that stops answering (a restart, a lost connection): Optuna and SQLAlchemy raise these.
STORAGE_DOWN = (optuna.exceptions.StorageInternalError, sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError)
STORAGE_PATIENCE_S = 300  # how long the storage may stay away before the sweep stops (rerun to resume)
T = TypeVar("T")
# libpq's words when the server answers but refuses the login: no password found, or a wrong one. No wait fixes these.
LOGIN_REFUSED = ("fe_sendauth: no password supplied", "password authentication failed")


class StorageLoginError(UserError):
    """The study's database answered and refused the login (``retry`` does not wait for it)."""


def retry(call: Callable[..., T], *args, **kwargs) -> T:
    """``call(*args, **kwargs)``, retried while the study's storage does not answer, for up to
    STORAGE_PATIENCE_S seconds.

    Each call to the storage is safe to repeat: a tell of a trial already told is skipped, a suggestion
    already made is returned again, and a trial asked twice leaves an unclaimed one that is soon settled. A login
    the database refuses is no outage: ``StorageLoginError`` at once."""
    delay, deadline = 1.0, time.monotonic() + STORAGE_PATIENCE_S
    while True:
        try:
            return call(*args, **kwargs)
        except STORAGE_DOWN as error:
            refused = login_refused(error)
            if refused is not None:
                raise StorageLoginError(refused) from None
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the study's storage has not answered for {STORAGE_PATIENCE_S} s "
                    f"({str(error).splitlines()[0]}): rerun the same command to resume"
                ) from None
            log.warning(
                "The study's storage did not answer (%s): retrying in %.0f s", str(error).splitlines()[0], delay
            )
            time.sleep(delay)
            delay = min(2 * delay, 30.0)


def login_refused(error: BaseException) -> str | None:
    """What to tell the user when ``error`` (or its cause) is the database refusing the login, else None."""
    while error is not None:
        text = str(error)
        if any(words in text for words in LOGIN_REFUSED):
            found = next(line for line in text.splitlines() if any(words in line for words in LOGIN_REFUSED))
            reason = " ".join(found.rsplit(" failed: ", 1)[-1].split())  # libpq's words, after where it connected
            passfile = os.environ.get("PGPASSFILE", "~/.pgpass")
            return (
                f"the study's database refused the login ({reason}): the storage URL holds no password (taskvec-ir "
                f"refuses one there), so libpq reads it from {passfile}: give that file a line "
                "host:port:database:user:password with the database's password (chmod 600), or point PGPASSFILE at "
                "the file that has one; then rerun the same command"
            )
        error = error.__cause__ or error.__context__
    return None


def absolute_storage(storage: str | None) -> str | None:
    """sqlite URLs relative to the working directory made absolute (workers may run elsewhere)."""
    prefix = "sqlite:///"
    if storage and storage.startswith(prefix) and not storage[len(prefix) :].startswith("/"):
        path = Path(storage[len(prefix) :]).resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        return prefix + str(path)
    return storage


def open_study(name, storage: optuna.storages.BaseStorage | None, sampler, direction: str | list[str]) -> optuna.Study:
    """The study, created if new (see ``racing``); ``direction``: its objective's, or a list, one per objective."""
    directions = {"direction": direction} if isinstance(direction, str) else {"directions": direction}
    return racing(
        optuna.create_study, study_name=name, storage=storage, sampler=sampler, load_if_exists=True, **directions
    )


def racing(create: Callable[..., T], **kwargs) -> T:
    """``create(**kwargs)`` (a study, or the storage's schema) when workers starting together race to create it: the
    storage lets one win (a unique study name; sqlite may also refuse a concurrent schema creation), and the losers
    load it."""
    for attempt in range(10):
        try:
            return create(**kwargs)
        except (optuna.exceptions.DuplicatedStudyError, sqlalchemy.exc.IntegrityError, sqlalchemy.exc.OperationalError):
            if attempt == 9:
                raise
            time.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")
