"""Writing results when the disk is full or read-only, or when W&B cannot be reached.

A result file is written whole or not at all: a failed write raises ``OutputError`` naming the file and the
cause, removes its temporary file and leaves the previous content in place. W&B being unreachable costs
nothing: the run is kept offline for ``wandb sync`` and the job succeeds.
"""

import errno
import json
from pathlib import Path

import pytest

from taskvec_ir.ir import evaluation
from taskvec_ir.storage.outputs import OutputError, atomic_path, write_json

from wandb_records import run_contents


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_full_disk_keeps_the_previous_result_and_names_the_file(tmp_path, monkeypatch):
    write_json({"test": {"bm25": {"ndcg@10": 0.3}}}, tmp_path / "metrics.json")
    before = _files(tmp_path)

    def full(self, data, *args, **kwargs):  # half the bytes reach the disk, then it is full
        with open(self, "w") as out:
            out.write(data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(OutputError, match=r"cannot write .*/metrics.json: the disk is full") as error:
        write_json({"test": {"bm25": {"ndcg@10": 0.9}}}, tmp_path / "metrics.json")
    assert error.value.errno == errno.ENOSPC
    assert _files(tmp_path) == before  # the old result, whole; no temporary file


def test_full_disk_while_writing_a_trec_run_leaves_no_partial_run(tmp_path, monkeypatch):
    class FullFile:
        def __init__(self, path, mode):
            self.handle, self.written = open(path, mode), 0  # noqa: SIM115 - a file object of its own

        def write(self, text):
            if self.written > 100:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(text)
            return self.handle.write(text)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(evaluation, "open", FullFile, raising=False)
    run = {f"q{q}": {f"d{d}": float(d) for d in range(20)} for q in range(10)}
    with pytest.raises(OutputError, match=r"cannot write .*/runs/test.bm25.trec: the disk is full"):
        evaluation.save_trec_run(run, tmp_path / "runs" / "test.bm25.trec", "bm25")
    assert list((tmp_path / "runs").iterdir()) == []


def _writes_blocked(folder: Path) -> bool:
    try:
        (folder / ".probe").write_text("x")
    except PermissionError:
        return True
    (folder / ".probe").unlink()
    return False


def test_read_only_job_dir_is_a_clear_error(tmp_path):
    write_json({"a": 1}, tmp_path / "objective.json")
    tmp_path.chmod(0o555)
    try:
        if not _writes_blocked(tmp_path):
            pytest.skip("running as root: chmod does not stop writes (the full-disk tests cover failed writes)")
        with pytest.raises(OutputError, match=r"cannot write .*/metrics.json: the folder is not writable"):
            write_json({"b": 2}, tmp_path / "metrics.json")
        assert sorted(p.name for p in tmp_path.iterdir()) == ["objective.json"]
    finally:
        tmp_path.chmod(0o755)


def test_other_errors_in_the_block_pass_through_and_leave_nothing(tmp_path):
    with pytest.raises(KeyError), atomic_path(tmp_path / "results.md") as tmp:
        tmp.write_text("half")
        raise KeyError("a bug, not a write error")
    assert list(tmp_path.iterdir()) == []


# -- a whole job on a full disk ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def disk_full(app_runs):
    return app_runs["disk_full"]["result"], app_runs["disk_full"]["out"]


def test_a_job_on_a_full_disk_fails_with_nothing_that_looks_complete(disk_full):
    result, out = disk_full
    assert result.returncode != 0
    assert f"cannot write {out.resolve()}/runs/dev.bm25.trec: the disk is full" in result.stderr, result.stderr[-3000:]
    names = [str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()]
    assert not [n for n in names if n.endswith(".tmp") or n.startswith("runs/")], names
    assert not {"metrics.json", "objective.json", "per_query.json"} & set(names)
    assert run_contents(out)["exit_code"] == 1  # W&B records the run as failed


def test_a_job_on_a_full_disk_says_so_in_one_line(disk_full):
    # needs wiring: outputs.OutputError is a UserError (a single run ends with the message alone)
    result, out = disk_full
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"taskvec-ir: [Errno 28] cannot write {out.resolve()}")


# -- W&B ------------------------------------------------------------------------------------------------------------
def test_unreachable_wandb_server_keeps_the_run_offline_and_the_job_succeeds(app_runs):
    result, out = app_runs["twin_a"]["result"], app_runs["twin_a"]["out"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W&B is unreachable" in result.stderr + result.stdout
    metrics = json.loads((out / "metrics.json").read_text())["dev"]
    (offline,) = out.glob("wandb/offline-run-*")  # ready for `wandb sync`
    run = run_contents(out)
    assert run["exit_code"] == 0
    for system, values in metrics.items():
        for measure, value in values.items():
            assert run["summary"][f"dev/{system}/{measure}"] == pytest.approx(value)
