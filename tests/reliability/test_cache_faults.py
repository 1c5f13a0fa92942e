"""The cache under faults: parallel workers writing one entry at once, damaged entries, a full disk.

Whatever happens, an entry on disk is either complete or absent: a reader never gets a half-written value,
a damaged one is detected and recomputed, and a cache that cannot be written costs no result.
"""

import contextlib
import errno
import json
import multiprocessing
import queue
import threading
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from taskvec_ir.runs.compose import compose
from taskvec_ir.runs.job import open_pipeline
from taskvec_ir.storage.cache import Cache
from taskvec_ir.storage.outputs import OutputError

import cache_workers
from procs import model_overrides


def _fill_at_once(target, root: Path, how: str, watch: Path | None = None) -> tuple[list, list]:
    """Run ``target`` in two workers (threads or processes) that miss together and write together, while
    this process reads ``watch`` as often as it can; (the workers' outcomes, every read that was not valid JSON)."""
    if how == "threads":
        barrier, results = threading.Barrier(2), queue.Queue()
        workers = [threading.Thread(target=target, args=(str(root), barrier, results)) for _ in range(2)]
    else:
        context = multiprocessing.get_context("spawn")
        barrier, results = context.Barrier(2), context.Queue()
        workers = [context.Process(target=target, args=(str(root), barrier, results)) for _ in range(2)]
    for worker in workers:
        worker.start()
    bad_reads, outcomes = [], []
    while len(outcomes) < len(workers):
        if watch is not None and watch.exists():
            try:
                json.loads(watch.read_text())
            except (OSError, ValueError) as error:
                bad_reads.append(error)
        with contextlib.suppress(queue.Empty):
            outcomes.append(results.get(timeout=0.001 if watch else 120))
    for worker in workers:
        worker.join(timeout=60)
    return outcomes, bad_reads


def _leftovers(folder: Path) -> list[str]:
    """Temporary files left behind; the lock files of folder entries (under .locks) stay by design."""
    return sorted(
        p.name
        for p in folder.rglob("*")
        if (p.name.startswith(".") or p.name.endswith(".tmp")) and ".locks" not in p.relative_to(folder).parts
    )


@pytest.mark.parametrize("how", ["threads", "processes"])
def test_two_workers_writing_one_json_entry_at_once(tmp_path, how):
    entry = tmp_path / "scores" / "shared.json"
    outcomes, bad_reads = _fill_at_once(cache_workers.fill_json, tmp_path, how, watch=entry)
    # Both computed (both missed) and both got the full value; a reader never saw a partial entry; the entry
    # is one complete copy of the value.
    assert outcomes == [(True, {"scores.miss": 1})] * 2
    assert bad_reads == []
    assert json.loads((tmp_path / "scores" / "shared.json").read_text()) == cache_workers.RUN
    assert [p.name for p in (tmp_path / "scores").iterdir()] == ["shared.json"] and not _leftovers(tmp_path)
    assert Cache(tmp_path).json("scores", "shared", lambda: pytest.fail("recomputed")) == cache_workers.RUN


@pytest.mark.parametrize("how", ["threads", "processes"])
def test_two_workers_writing_one_folder_entry_at_once(tmp_path, how):
    outcomes, _ = _fill_at_once(cache_workers.fill_folder, tmp_path, how)
    # One built it; the other waited for that build (a BM25 index may take an hour) and read it; both got it whole.
    assert sorted(outcomes, key=str) == [(True, {"task_vector.hit": 1}), (True, {"task_vector.miss": 1})]
    entry = tmp_path / "task_vector" / "shared"
    assert {p.name for p in entry.iterdir()} == {*cache_workers.PARTS, "manifest.json"}
    assert [p.name for p in (tmp_path / "task_vector").iterdir()] == ["shared"] and not _leftovers(tmp_path)
    assert Cache(tmp_path).folder("task_vector", "shared", lambda out: pytest.fail("rebuilt")) == entry


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text[: len(text) // 2],  # truncated
        lambda text: "",  # emptied
        lambda text: b"\x00\xff\xfe garbage",  # not even text
    ],
)
def test_damaged_json_entry_is_recomputed(tmp_path, damage, caplog):
    cache = Cache(tmp_path)
    value = {"q": {"d": 2.0, "e": 1.5}}
    cache.json("scores", "key", lambda: value)
    path = tmp_path / "scores" / "key.json"
    damaged = damage(path.read_text())
    path.write_bytes(damaged if isinstance(damaged, bytes) else damaged.encode())
    assert cache.json("scores", "key", lambda: value) == value
    assert cache.stats["scores.miss"] == 2 and "is damaged" in caplog.text
    assert cache.json("scores", "key", lambda: pytest.fail("not served from the repaired entry")) == value


def _write_tau(folder):
    save_file({"w": torch.arange(6.0)}, str(folder / "shard-00000.safetensors"))


@pytest.mark.parametrize("damage", ["truncate", "delete manifest", "extra bytes"])
def test_damaged_folder_entry_is_rebuilt(tmp_path, damage):
    cache = Cache(tmp_path)
    folder = cache.folder("task_vector", "key", _write_tau)
    shard = folder / "shard-00000.safetensors"
    if damage == "truncate":
        shard.write_bytes(shard.read_bytes()[:-8])
    elif damage == "delete manifest":
        (folder / "manifest.json").unlink()
    else:
        shard.write_bytes(shard.read_bytes() + b"\0")
    again = cache.folder("task_vector", "key", _write_tau)
    assert torch.equal(load_file(str(again / "shard-00000.safetensors"))["w"], torch.arange(6.0))
    assert cache.stats == {"task_vector.miss": 2}
    assert cache.folder("task_vector", "key", lambda out: pytest.fail("rebuilt a complete entry")) == again
    assert [p.name for p in (tmp_path / "task_vector").iterdir()] == ["key"]  # no staging or damaged copy left


def test_failed_build_leaves_nothing(tmp_path):
    cache = Cache(tmp_path)

    def broken(folder):
        _write_tau(folder)
        raise MemoryError("out of memory while writing τ")

    with pytest.raises(MemoryError):
        cache.folder("task_vector", "key", broken)
    assert list((tmp_path / "task_vector").iterdir()) == []


def _disk_full(monkeypatch, after_bytes: int = 10):
    """Writes through Path.write_text/write_bytes store ``after_bytes`` bytes, then fail as a full disk does."""

    def full(self, data, *args, **kwargs):
        with open(self, "wb") as out:
            out.write((data.encode() if isinstance(data, str) else data)[:after_bytes])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", full)
    monkeypatch.setattr(Path, "write_bytes", full)


def test_full_disk_costs_a_json_entry_not_the_result(tmp_path, monkeypatch, caplog):
    cache, value = Cache(tmp_path), {"q": {"d": 1.0}}
    _disk_full(monkeypatch)
    assert cache.json("scores", "key", lambda: value) == value  # the job goes on with what it computed
    assert cache.stats == {"scores.miss": 1, "scores.unsaved": 1}
    assert "Could not store cache entry" in caplog.text and "the disk is full" in caplog.text
    assert list((tmp_path / "scores").iterdir()) == []  # no entry, no partial temporary file
    monkeypatch.undo()
    assert Cache(tmp_path).json("scores", "key", lambda: value) == value  # computed again, stored this time
    assert (tmp_path / "scores" / "key.json").is_file()


def test_full_disk_while_building_a_folder_entry_is_a_clear_error(tmp_path, monkeypatch):
    _disk_full(monkeypatch)
    with pytest.raises(
        OutputError,
        match=r"cannot write the cache entry .*task_vector/key \(No space left on device\): "
        r"free space under cache.dir or point cache.dir elsewhere",
    ):
        Cache(tmp_path).folder("task_vector", "key", lambda out: (out / "part").write_bytes(b"x" * 100))
    assert list((tmp_path / "task_vector").iterdir()) == []


def test_damaged_entry_in_a_real_run_is_recomputed_to_the_same_candidates(triple, mirror_dir, tmp_path):
    cfg = compose(
        [
            "dataset=cranfield",
            "retriever.top_k=10",
            f"data.mirror_dir={mirror_dir}",
            f"cache.dir={tmp_path}",
            *model_overrides(triple),
        ]
    )
    first = open_pipeline(cfg).candidates("test")
    (entry,) = (tmp_path / "bm25").iterdir()
    entry.write_bytes(entry.read_bytes()[:1000])  # a truncated copy, as a killed non-atomic writer would leave
    again = open_pipeline(cfg)
    assert again.candidates("test") == first and again.cache.stats["bm25.miss"] == 1
    assert json.loads(entry.read_text()) == first
