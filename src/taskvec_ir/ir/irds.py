"""ir_datasets as every collection is read through it: its home folder, the files of an offline mirror placed
where it looks for them (the same loading code runs with or without internet), and a dataset's ids loaded with
errors that name the config key to fix.

``ir_datasets`` is imported inside the functions: several of its modules compute their folders from
``IR_DATASETS_HOME`` at import time, so the caller sets that variable first (``use_ir_datasets_home``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.errors import MissingFileError, UserError
from taskvec_ir.ir.beir import register_beir_collection

SHOWN_IDS = 5  # ids a message or a warning lists


def use_ir_datasets_home(home: str | Path) -> Path:
    """Make ``home`` the folder ir_datasets reads and writes; return it (expanded, created)."""
    path = Path(home).expanduser().resolve()
    # ir_datasets fixes its dataset folders when imported: changing the variable afterwards would split
    # one run's files between two homes.
    if "ir_datasets" in sys.modules and ir_datasets_home().resolve() != path:
        raise RuntimeError(
            f"ir_datasets was already imported with IR_DATASETS_HOME={ir_datasets_home()}; "
            f"set the home ({path}) before anything imports ir_datasets"
        )
    path.mkdir(parents=True, exist_ok=True)
    os.environ["IR_DATASETS_HOME"] = str(path)
    return path


def ir_datasets_home() -> Path:
    # The same rule as ir_datasets.util.home_path, without importing ir_datasets.
    return Path(os.environ.get("IR_DATASETS_HOME", Path.home() / ".ir_datasets"))


def place_offline_files(dataset: DatasetConfig, mirror_dir: str | Path | None) -> list[Path]:
    """Symlink the dataset's ``offline_files`` from ``mirror_dir`` to where ir_datasets looks for them.

    Targets that already exist are left alone; returns the paths placed by this call. Without a mirror
    folder (None or empty) nothing is placed and ir_datasets downloads as usual.
    """
    if not mirror_dir:
        return []
    mirror = Path(mirror_dir).expanduser().resolve()
    sources = {target: mirror / name for target, name in dataset.offline_files.items()}
    missing = sorted(str(source) for source in sources.values() if not source.is_file())
    if missing:
        raise MissingFileError(
            f"dataset.offline_files names files missing from the mirror folder {mirror}: {', '.join(missing)}"
        )
    home = ir_datasets_home()
    placed = []
    for target, source in sources.items():
        path = home / target
        if path.exists() or path.is_symlink():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            path.symlink_to(source)
        except FileExistsError:  # a parallel worker placed it first
            continue
        placed.append(path)
    return placed


def load_collection(dataset: DatasetConfig, irds_id: str, key: str):
    """``ir_datasets.load(irds_id)``, the dataset's BEIR folder registered first where it has one; an unknown id
    is an error naming ``key``."""
    import ir_datasets

    if dataset.beir_path:
        register_beir_collection(dataset.name, dataset.beir_path)
    try:
        return ir_datasets.load(irds_id)
    except KeyError:
        raise UserError(f"unknown ir_datasets id {irds_id!r}: fix {key}") from None


def check_fields(record_type, fields: list[str], key: str) -> None:
    """Every one of ``fields`` is a field of ``record_type`` (an ir_datasets doc or query type), or an error
    naming ``key``."""
    unknown = [field for field in fields if field not in record_type._fields]
    if unknown:
        raise UserError(f"unknown field(s) {unknown} in {key}; available: {list(record_type._fields)}")
