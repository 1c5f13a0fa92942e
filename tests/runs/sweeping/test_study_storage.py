"""Where a sweep's study lives: a relative sqlite storage made absolute for jobs that run elsewhere; a storage that
refuses the login is told at once, one that is down is waited for."""

import time

import pytest
import sqlalchemy.exc

from taskvec_ir.runs.sweeping.study_storage import StorageLoginError, absolute_storage, retry


def test_a_relative_sqlite_storage_is_made_absolute_and_others_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_storage("sqlite:///studies/a.db") == f"sqlite:///{tmp_path}/studies/a.db"
    assert (tmp_path / "studies").is_dir()
    for kept in ("sqlite:////abs/a.db", "postgresql://u@localhost/db", None):
        assert absolute_storage(kept) == kept


def outage_then(value, text: str):
    """A storage call that fails once with ``text`` as psycopg's error (through SQLAlchemy), then returns ``value``."""
    calls = []

    def call():
        calls.append(1)
        if len(calls) == 1:
            raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception(text))
        return value

    return call, calls


def test_a_refused_login_is_told_at_once_with_the_password_files_and_an_outage_is_retried(monkeypatch):
    monkeypatch.setenv("PGPASSFILE", "/home/me/.pgpass-optuna")
    server = 'connection failed: connection to server at "db", port 5432 failed: '
    for refusal in ("fe_sendauth: no password supplied", 'FATAL:  password authentication failed for user "me"'):
        call, calls = outage_then(1, server + refusal)
        started = time.monotonic()
        with pytest.raises(StorageLoginError) as refused:
            retry(call)
        assert calls == [1] and time.monotonic() - started < 0.5  # no wait: waiting does not fix a login
        message = str(refused.value)
        assert message.startswith(f"the study's database refused the login ({' '.join(refusal.split())}): ")
        assert "reads it from /home/me/.pgpass-optuna" in message and "host:port:database:user:password" in message
    call, calls = outage_then(7, server + "Connection refused")  # a server that is down (a restart): retried
    assert retry(call) == 7 and calls == [1, 1]
