"""The study's database password is never written at rest: a URL carrying it is refused before anything runs, and
the way docs/cluster.md gives it (a URL without it, the password in ~/.pgpass for libpq) leaves it in no file of the
sweep, its SLURM jobs' logs, its W&B runs or the sweeper's output. A login the database refuses (no password file,
a wrong password) is told at once, with the fix, not waited on as an outage."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

from taskvec_ir.runs.sweeping.study_storage import STORAGE_PATIENCE_S

from servers import assert_no_trial_lost_or_counted_twice, finish, process_env, start, sweep_command


def files_holding(secret: str, *roots: Path) -> list[str]:
    found = [p for root in roots if root.exists() for p in root.rglob("*") if p.is_file() and not p.is_symlink()]
    assert found, f"nothing written under {roots}"
    return [str(p) for p in found if secret.encode() in p.read_bytes()]


def wandb_dirs() -> list[Path]:
    """W&B's own folders outside the job dirs (tests/conftest.py points them into the session's temporary folder)."""
    return [Path(os.environ[var]) for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR")]


def test_a_password_on_the_command_line_is_refused_before_anything_is_written(
    cluster, triple, mirror_dir, tmp_path, study_name
):
    url = urlsplit(cluster.storage)
    with_password = url._replace(netloc=f"{url.username}:{cluster.password}@{url.netloc.rpartition('@')[2]}").geturl()
    command = [
        f"hydra.sweeper.storage={with_password}" if arg.startswith("hydra.sweeper.storage=") else arg
        for arg in sweep_command(cluster, study_name, tmp_path, triple, 1)
    ]
    refused = subprocess.run(
        command, env=process_env(mirror_dir), capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300
    )
    assert refused.returncode != 0
    assert f"hydra.sweeper.storage={cluster.storage}" in refused.stderr and "~/.pgpass" in refused.stderr
    assert cluster.password not in refused.stdout + refused.stderr
    assert not (tmp_path / "sweep").exists()
    assert (
        study_name
        not in subprocess.run(  # refused before the study was made
            ["psql", "-X", "-Atc", "select study_name from studies", cluster.storage], capture_output=True, text=True
        ).stdout
    )


def test_a_password_from_pgpass_is_in_no_file_the_sweep_writes(cluster, triple, mirror_dir, tmp_path, study_name):
    home = tmp_path / "home"  # the user's home: ~/.pgpass, libpq's own password file, the only file holding it
    home.mkdir()
    url = urlsplit(cluster.storage)
    pgpass = home / ".pgpass"
    pgpass.write_text(f"{url.hostname}:{url.port}:{url.path.lstrip('/')}:{url.username}:{cluster.password}\n")
    pgpass.chmod(0o600)  # libpq ignores a password file that others may read
    env = {**process_env(mirror_dir), "HOME": str(home)}
    del env["PGPASSFILE"]
    work, log = tmp_path / "work", tmp_path / "sweeper.log"
    work.mkdir()
    command = [
        "sweep.final_evaluation=true" if arg == "sweep.final_evaluation=false" else arg
        for arg in sweep_command(cluster, study_name, work, triple, 1)
    ]
    output = finish(start(command, env, log), log)
    assert_no_trial_lost_or_counted_twice(cluster, study_name, 1)
    sweep_dir = work / "sweep"
    assert (sweep_dir / "final" / "metrics.json").is_file() and list(sweep_dir.rglob("*.wandb"))
    assert list(sweep_dir.rglob(".hydra/hydra.yaml")) and list(sweep_dir.glob(".submitit/*/*.out"))
    assert cluster.password not in output
    assert not files_holding(cluster.password, work, log, *wandb_dirs())


def refused_login(
    cluster, triple, mirror_dir, tmp_path, study_name, passfile: Path
) -> tuple[subprocess.CompletedProcess, float]:
    """A sweep whose only password file is ``passfile`` (no ~/.pgpass in its home), and the seconds it took."""
    home = tmp_path / "home"
    home.mkdir()
    env = {**process_env(mirror_dir), "HOME": str(home), "PGPASSFILE": str(passfile)}
    started = time.monotonic()
    result = subprocess.run(
        sweep_command(cluster, study_name, tmp_path, triple, 1),
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=STORAGE_PATIENCE_S,  # a retried login would run past it
    )
    return result, time.monotonic() - started


def test_a_login_without_a_password_is_told_at_once_with_the_fix(cluster, triple, mirror_dir, tmp_path, study_name):
    result, seconds = refused_login(cluster, triple, mirror_dir, tmp_path, study_name, tmp_path / "no.pgpass")
    assert result.returncode == 1 and seconds < 120  # not retried as an outage (STORAGE_PATIENCE_S)
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("taskvec-ir:")]
    assert "refused the login (fe_sendauth: no password supplied)" in line
    assert f"reads it from {tmp_path / 'no.pgpass'}" in line and "PGPASSFILE" in line
    assert "Traceback" not in result.stderr + result.stdout and "did not answer" not in result.stdout


def test_a_wrong_password_is_told_at_once_as_a_login_problem(cluster, triple, mirror_dir, tmp_path, study_name):
    url = urlsplit(cluster.storage)
    wrong = tmp_path / "wrong.pgpass"
    wrong.write_text(f"{url.hostname}:{url.port}:{url.path.lstrip('/')}:{url.username}:not-{cluster.password}\n")
    wrong.chmod(0o600)
    result, seconds = refused_login(cluster, triple, mirror_dir, tmp_path, study_name, wrong)
    assert result.returncode == 1 and seconds < 120
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("taskvec-ir:")]
    assert f'password authentication failed for user "{url.username}"' in line and str(wrong) in line
    assert cluster.password not in result.stdout + result.stderr
