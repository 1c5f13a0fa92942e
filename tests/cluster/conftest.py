"""Real servers for the cluster tests: a one-node SLURM cluster and a PostgreSQL server on this machine.

``scripts/cluster-up.sh`` (``make cluster-up``) starts them, or reuses them when they already run (CI starts
them before the tests). Nothing here mocks the scheduler or the database: a test that cannot have them (the
script needs root) is skipped with the one line saying why.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from servers import REPO, Cluster
from tiny_models import tiny_triple


@pytest.fixture(scope="session")
def cluster() -> Cluster:
    if os.geteuid() != 0:
        pytest.skip("the cluster tests need root: scripts/cluster-up.sh starts slurmctld, slurmd, munged, PostgreSQL")
    result = subprocess.run(
        [str(REPO / "scripts" / "cluster-up.sh")], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=900
    )
    if result.returncode == 77:
        pytest.skip(result.stderr.strip().splitlines()[-1])
    assert result.returncode == 0, result.stderr[-3000:]
    values = dict(line.split("=", 1) for line in result.stdout.splitlines())
    # How users give the password (docs/cluster.md): libpq reads it from this file, for the tests and every process
    # they start (sweepers, and their SLURM jobs, which inherit the environment).
    os.environ["PGPASSFILE"] = values["PGPASSFILE"]
    return Cluster(values["OPTUNA_STORAGE"], values["SLURM_PARTITION"], Path(values["PGPASSFILE"]))


@pytest.fixture(scope="session")
def triple(tmp_path_factory) -> dict[str, Path]:
    return tiny_triple(tmp_path_factory.mktemp("triple"), "bi_encoder")


@pytest.fixture
def study_name() -> str:
    """A new study in the shared database for each test."""
    return f"test-{uuid.uuid4().hex[:12]}"
