"""Reading an offline W&B run file (``run-<id>.wandb``) back, for tests.

wandb 0.31 ships no reader for its offline files. The format is a LevelDB-style log: a 7-byte file
header, then 32 KiB blocks of chunks (checksum, length, type), each record a ``Record`` protobuf.
"""

from __future__ import annotations

import struct
from collections import Counter
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
        if offset + length > len(data):  # the service is still writing this chunk: the records before it
            break
        chunk, offset = data[offset : offset + length], offset + length
        if kind == 0 and length == 0:
            break
        pending = chunk if kind in (_FULL, _FIRST) else pending + chunk
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def run_contents(run: Path) -> dict:
    """Summary values, history (the last value of each key, and every row in order: ``rows``), config keys, name,
    tags, group, job type, git fields, metric definitions (name -> summary aggregations; ``step_metrics``: name ->
    its x axis), exit code and artifacts (each with its name, type, aliases, whether the run used it as an input,
    metadata, and files: name -> reference, empty when uploaded) of ``run``: a run file, or the folder of one run.
    A value wandb stores in parts (a logged table's reference) is nested as wandb holds it:
    ``summary["test/per_query"]["_type"]``; ``kinds``: how many records of each kind the file holds."""
    import json

    contents = {"summary": {}, "history": {}, "rows": [], "config": {}, "metrics": {}, "step_metrics": {}}
    contents.update(exit_code=None, artifacts=[], kinds=Counter())
    for record in _finished_records(run if Path(run).is_file() else run_file(run)):
        kind = record.WhichOneof("record_type")
        contents["kinds"][kind] += 1
        if kind == "artifact":  # logged (an output), or used (an input: use_after_commit)
            artifact = record.artifact
            contents["artifacts"].append(
                {
                    "name": artifact.name,
                    "type": artifact.type,
                    "aliases": list(artifact.aliases),
                    "used": artifact.use_after_commit,
                    "metadata": json.loads(artifact.metadata or "{}"),
                    "files": {entry.path: entry.ref for entry in artifact.manifest.contents},
                }
            )
        if kind == "run":
            run = record.run
            contents.update(group=run.run_group, job_type=run.job_type, tags=list(run.tags), name=run.display_name)
            contents["git"] = {"commit": run.git.commit, "remote_url": run.git.remote_url}
            for item in record.run.config.update:
                _set(contents["config"], item, json.loads(item.value_json))
        elif kind == "summary":
            for item in record.summary.update:
                _set(contents["summary"], item, json.loads(item.value_json))
        elif kind == "history":
            row = {}
            for item in record.history.item:
                _set(row, item, json.loads(item.value_json))
            contents["rows"].append(row)
            contents["history"].update(row)
        elif kind == "config":  # a chart's definition is config["_wandb"]["visualize"][key]
            for item in record.config.update:
                _set(contents["config"], item, json.loads(item.value_json))
        elif kind == "metric":
            metric = record.metric
            name = metric.name or metric.glob_name
            aggregations = [a for a in ("min", "max", "mean", "last", "none") if getattr(metric.summary, a)]
            contents["metrics"][name] = aggregations
            if metric.step_metric:
                contents["step_metrics"][name] = metric.step_metric
        elif kind == "exit":
            contents["exit_code"] = record.exit.exit_code
    return contents


def _finished_records(path: Path, patience_s: float = 10.0) -> list:
    """The run's records once wandb's service has written them all: ``run.finish()`` can return before the
    service's last flush to the file, so wait (up to ``patience_s``) for its exit record and a file that has
    stopped growing. A run killed outright has no exit record: its records after the wait."""
    import time

    deadline, size = time.monotonic() + patience_s, -1
    while True:
        records = read_records(path)
        done = any(r.WhichOneof("record_type") == "exit" for r in records) and path.stat().st_size == size
        if done or time.monotonic() > deadline:
            return records
        size = path.stat().st_size
        time.sleep(0.2)


def run_file(run_dir: Path) -> Path:
    """The one offline run file under ``run_dir``."""
    (path,) = Path(run_dir).glob("wandb/offline-run-*/run-*.wandb")
    return path


def run_files(root: Path) -> list[Path]:
    """Every offline run file under ``root``, at any depth (a table's jobs, a sweep's trials)."""
    return sorted(Path(root).rglob("wandb/offline-run-*/run-*.wandb"))


def logged_table(run_dir: Path, key: str) -> list[dict]:
    """The rows (column -> value) of the table the run logged as ``key``, read from the run's files."""
    import json

    path = run_contents(run_dir)["history"][key]["path"]  # a logged table is a reference to its file
    table = json.loads((run_file(run_dir).parent / "files" / path).read_text())
    return [dict(zip(table["columns"], row, strict=True)) for row in table["data"]]


def panel_keys(workspace) -> dict[str, set[tuple[str, str]]]:
    """What each section of a wandb_workspaces ``Workspace`` reads, as (where, key): ``config`` (a dotted path),
    ``summary`` (a bar or scalar chart's metric, a table's key) or ``history`` (a line plot's x and y)."""
    import wandb_workspaces.reports.v2 as wr

    def where(metric, default: str) -> tuple[str, str]:
        if isinstance(metric, str):
            return default, metric
        return {wr.Config: "config", wr.SummaryMetric: "summary"}[type(metric)], metric.name

    found = {}
    for section in workspace.sections:
        keys = set()
        for panel in section.panels:
            if isinstance(panel, wr.LinePlot):
                keys |= {where(metric, "history") for metric in [panel.x, *panel.y]}
            elif isinstance(panel, wr.ScatterPlot):
                keys |= {where(metric, "summary") for metric in (panel.x, panel.y)}
            elif isinstance(panel, wr.ParallelCoordinatesPlot):
                keys |= {where(column.metric, "summary") for column in panel.columns}
            elif isinstance(panel, wr.BarPlot):
                keys |= {where(metric, "summary") for metric in panel.metrics}
            elif isinstance(panel, wr.WeavePanelSummaryTable):  # reads runs.summary[table_name]
                keys.add(("summary", panel.table_name))
            elif not isinstance(panel, wr.RunComparer):  # the run comparer reads every config key
                raise AssertionError(f"a panel this reader does not know: {panel!r}")
        found[section.name] = keys
    return found


def curve(contents: dict, name: str) -> list[dict]:
    """The points a run logged as the curve ``name`` (``tracking.log_curve``): its history rows' ``<name>/...``
    values, by key, in order."""
    prefix = f"{name}/"
    points = [{k.removeprefix(prefix): v for k, v in row.items() if k.startswith(prefix)} for row in contents["rows"]]
    return [point for point in points if point]


def _set(values: dict, item, value) -> None:
    """``value`` at ``item``'s key: a key, or the parts of one (``nested_key``), nested as wandb holds them."""
    *parents, last = [item.key] if item.key else list(item.nested_key)
    for part in parents:
        values = values.setdefault(part, {})
    values[last] = value
