"""Workers that fill one cache entry at the same moment (test_cache_faults.py): importable by name, so
``multiprocessing`` can start them as fresh processes ("spawn")."""

import time
from pathlib import Path

from taskvec_ir.storage.cache import Cache

# Large enough that two writes take a while and overlap.
RUN = {f"q{q}": {f"d{d}": q * 1000 + d + 0.5 for d in range(100)} for q in range(500)}
PARTS = {f"part-{i}": bytes([i]) * (1 << 20) for i in range(4)}


def fill_json(root: str, barrier, results) -> None:
    cache = Cache(root)

    def compute():
        barrier.wait(timeout=120)  # both workers have missed; both now write
        return RUN

    value = cache.json("scores", "shared", compute)
    results.put((value == RUN, dict(cache.stats)))


def fill_folder(root: str, barrier, results) -> None:
    cache = Cache(root)

    def build(folder: Path) -> None:
        time.sleep(0.5)  # the other worker asks meanwhile
        for name, content in PARTS.items():
            (folder / name).write_bytes(content)

    barrier.wait(timeout=120)  # both ask for the entry at once
    path = cache.folder("task_vector", "shared", build)
    results.put(({p.name: p.read_bytes() for p in path.iterdir() if p.name in PARTS} == PARTS, dict(cache.stats)))
