"""Result files are created with the permissions the umask allows (as ``open`` would make them), though they are
written to a private temporary file first and renamed into place."""

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from taskvec_ir.storage.cache import Cache
from taskvec_ir.storage.outputs import atomic_path, umask_mode, write_json


@pytest.fixture(params=[0o022, 0o027, 0o077])
def umask(request):
    previous = os.umask(request.param)
    yield request.param
    os.umask(previous)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_result_file_has_the_mode_open_gives_under_the_umask(umask, tmp_path):
    with open(tmp_path / "plain.txt", "w"):
        pass  # what the umask gives a file written in place
    write_json({"test": {}}, tmp_path / "metrics.json")
    with atomic_path(tmp_path / "runs" / "test.bm25.trec") as tmp:
        tmp.write_text("q1 Q0 d1 1 1.0 bm25\n")
    assert mode(tmp_path / "plain.txt") == 0o666 & ~umask
    assert mode(tmp_path / "metrics.json") == mode(tmp_path / "runs" / "test.bm25.trec") == 0o666 & ~umask
    assert umask_mode(0o777) == 0o777 & ~umask and os.umask(umask) == umask  # read, not changed


def test_cache_entries_have_the_modes_the_umask_allows(umask, tmp_path):
    cache = Cache(tmp_path / "cache")
    cache.json("scores", "k1", lambda: {"q1": 1.0})
    folder = cache.folder("bm25_index", "k2", lambda staging: (staging / "index.npy").write_bytes(b"x"))
    assert mode(tmp_path / "cache" / "scores" / "k1.json") == 0o666 & ~umask
    assert mode(folder) == 0o777 & ~umask  # not mkdtemp's 0700
    assert {p.name: mode(p) for p in folder.iterdir()} == dict.fromkeys(["index.npy", "manifest.json"], 0o666 & ~umask)


def test_a_process_started_under_umask_022_writes_0644(tmp_path):
    """The umask as a shell gives it to the command: read from the process itself, as it started."""
    script = "import sys; from taskvec_ir.storage.outputs import write_json; write_json({}, sys.argv[1])"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "metrics.json")], check=True, umask=0o022)
    assert mode(tmp_path / "metrics.json") == 0o644
