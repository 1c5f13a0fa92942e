"""Reading an offline W&B run file (``run-<id>.wandb``) back, for tests.

wandb 0.31 ships no reader for its offline files. The format is a LevelDB-style log: a 7-byte file
header, then 32 KiB blocks of chunks (checksum, length, type), each record a ``Record`` protobuf.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wandb.proto import wandb_internal_pb2

_BLOCK = 32 * 1024
_HEADER = struct.Struct("<IHB")  # crc32, length, chunk type
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_records(path: Path) -> list:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    records, pending, offset = [], b"", 7
    while offset + _HEADER.size <= len(data):
        if _BLOCK - offset % _BLOCK < _HEADER.size:  # the block's tail is padding
            offset += _BLOCK - offset % _BLOCK
            continue
        _, length, kind = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        chunk, offset = data[offset : offset + length], offset + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def run_contents(run_dir: Path) -> dict:
    """Summary values, config keys, tags, group, job type, exit code and artifacts (each with its name, type, whether
    the run used it as an input, metadata, and files: name -> reference, empty when uploaded) of the one run under
    ``run_dir``."""
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    import json

    contents = {"summary": {}, "history": {}, "config": {}, "exit_code": None, "artifacts": []}
    for record in read_records(path):
        kind = record.WhichOneof("record_type")
        if kind == "artifact":  # logged (an output), or used (an input: use_after_commit)
            artifact = record.artifact
            contents["artifacts"].append(
                {
                    "name": artifact.name,
                    "type": artifact.type,
                    "used": artifact.use_after_commit,
                    "metadata": json.loads(artifact.metadata or "{}"),
                    "files": {entry.path: entry.ref for entry in artifact.manifest.contents},
                }
            )
        if kind == "run":
            contents.update(group=record.run.run_group, job_type=record.run.job_type, tags=list(record.run.tags))
            contents["config"].update({item.key: json.loads(item.value_json) for item in record.run.config.update})
        elif kind == "summary":
            contents["summary"].update({_key(item): json.loads(item.value_json) for item in record.summary.update})
        elif kind == "history":
            contents["history"].update({_key(item): json.loads(item.value_json) for item in record.history.item})
        elif kind == "config":
            contents["config"].update({item.key: json.loads(item.value_json) for item in record.config.update})
        elif kind == "exit":
            contents["exit_code"] = record.exit.exit_code
    return contents


def _key(item) -> str:
    # Keys with slashes are stored as their parts.
    return item.key or "/".join(item.nested_key)
