"""Guards against tuning on test: a study (in its Optuna user attrs) and a table (``test_guard.json`` in its folder)
record their search space's fingerprint and the test evaluations of the same cell that existed when it was last
set. A test evaluation whose search space was set after a test result of its cell under another search space had
been seen is marked; a strict setting refuses it. Why and what counts: docs/sweeps.md ("Guards against tuning on
test")."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import optuna

from taskvec_ir.config.composed import Config
from taskvec_ir.config.merge import LamConfig
from taskvec_ir.errors import UserError
from taskvec_ir.runs.search_space import Dimension
from taskvec_ir.storage.outputs import write_json

CELL = "cell"  # a study's user attrs: its cell's key and description
SEARCH_SPACE = "search_space"  # its search space's record (``set_search_space``)
TESTS = "test_evaluations"  # the test evaluations made of it: its final evaluations


def cell_of(cfg: Config) -> dict:
    """What a test evaluation is a result of, besides the searched values: the key (a hash) of the dataset, its test
    split, the model, the merge and the first stage, and those in words."""
    cell = {
        "dataset": cfg.dataset.name,
        "test_split": cfg.dataset.test_split,
        "model": cfg.model.name,
        "merge": str(cfg.merge.method),
        "direction": str(cfg.merge.direction),
        "retriever": cfg.retriever.identity(),
    }
    text = f"{cell['dataset']} {cell['test_split']} · {cell['model']} · {cell['merge']}"
    return {
        "key": fingerprint(cell),
        "text": text + (f" ({cell['direction']})" if cell["direction"] != "task_vector" else ""),
    }


def fingerprint(values: Mapping) -> str:
    return hashlib.sha1(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


def search_space_of(dimensions: Mapping[str, Dimension], lam: LamConfig, dense: bool) -> dict:
    """What a search chooses from: each swept key's values or distribution, and ``lam.grid`` where λ is chosen from
    it (``lam.value`` null, with fusion)."""
    space = {name: dimension.describe() for name, dimension in sorted(dimensions.items())}
    if lam.value is None and not dense:
        space["lam.grid"] = [float(x) for x in lam.grid]
    return space


def record(space: Mapping, tests_seen: Sequence[dict]) -> dict:
    """A search space's record: its fingerprint, itself, when it was set and the test evaluations then seen."""
    return {"fingerprint": fingerprint(space), "space": dict(space), "set_at": _now(), "tests_seen": list(tests_seen)}


def tuned_after_test(space_record: Mapping | None) -> list[dict]:
    """The test evaluations seen, when the search space was set, that had been made under another search space: if
    any, the search space may have been chosen for what they showed."""
    if not space_record:
        return []
    return [t for t in space_record["tests_seen"] if t["search_space"] != space_record["fingerprint"]]


def describe(space_record: Mapping) -> str:
    """The mark's text: which test results preceded the search space."""
    seen = tuned_after_test(space_record)
    return (
        f"search space {space_record['fingerprint']} set at {space_record['set_at']}, after {len(seen)} test "
        f"evaluation(s) of the cell under another search space had been seen ({'; '.join(t['what'] for t in seen)})"
    )


def check(space_record: Mapping, strict: bool, key: str, what: str) -> None:
    """Refuse, under ``key`` (strict), a test evaluation whose search space was set after test results of its cell."""
    if strict and tuned_after_test(space_record):
        raise UserError(
            f"{key}: {what} would be evaluated on test with a {describe(space_record)}, i.e. tuned on test. "
            "Go back to the search space those results were made with, tune a cell whose test results you have not "
            f"seen, or set {key}=false to evaluate it marked as tuned after test results"
        )


def summary(space_record: Mapping | None) -> dict:
    """What a test evaluation's metrics.json and W&B record of the guard."""
    seen = tuned_after_test(space_record)
    return {
        "tuned_after_test": bool(seen),
        "search_space": space_record and space_record["fingerprint"],
        "set_at": space_record and space_record["set_at"],
        "tests_seen": seen,
    }


# -- a study's record, in its Optuna storage -----------------------------------------------------------------------
def storage_tests(storage, cell: Mapping) -> list[dict]:
    """Every test evaluation of ``cell`` recorded in ``storage`` (each study's ``test_evaluations``)."""
    if storage is None:  # a study in memory: nothing else to see
        return []
    if isinstance(storage, str) and storage.startswith("sqlite:///") and not Path(storage[10:]).is_file():
        return []  # no database yet: no study has run
    summaries = optuna.get_all_study_summaries(storage, include_best_trial=False)
    return [
        t
        for s in summaries
        if s.user_attrs.get(CELL, {}).get("key") == cell["key"]
        for t in s.user_attrs.get(TESTS, [])
    ]


def set_search_space(study: optuna.Study, storage, cfg: Config, space: Mapping) -> dict:
    """The study's search-space record: set anew (with every test evaluation of its cell then in ``storage``) when
    the study is new or its search space changed, else as it was set."""
    current = study.user_attrs.get(SEARCH_SPACE)
    if current is not None and current["fingerprint"] == fingerprint(space):
        return current
    cell = cell_of(cfg)
    seen = study.user_attrs.get(TESTS, []) if storage is None else storage_tests(storage, cell)  # in memory: its own
    new = record(space, seen)
    study.set_user_attr(CELL, cell)
    study.set_user_attr(SEARCH_SPACE, new)
    return new


def add_test(study: optuna.Study, space_record: Mapping, what: str) -> None:
    """Record a test evaluation of ``study`` made under ``space_record``'s search space."""
    entry = {"what": what, "search_space": space_record["fingerprint"], "at": _now()}
    study.set_user_attr(TESTS, [*study.user_attrs.get(TESTS, []), entry])


# -- a table's record, in its folder ---------------------------------------------------------------------------------
class TableGuard:
    """``test_guard.json`` of a table: per cell, its search space's record (as a study's) and the test evaluations
    the table made of it (``tests``), which it also records in its storage (a study ``<cell's study>:tests`` with no
    trials) for other tables and sweeps of the cell to see."""

    def __init__(self, path: Path, storage: str | None):
        self.path, self.storage = path, storage
        self.records: dict[str, dict] = json.loads(path.read_text()) if path.is_file() else {}

    def set_search_space(self, name: str, cfg: Config, space: Mapping) -> dict:
        """Cell ``name``'s record, set anew when new or its search space changed: the test evaluations then seen are
        the table's own of the cell and those of its storage (its cells' studies, and any other of the cell there)."""
        current = self.records.get(name)
        if current is None or current["fingerprint"] != fingerprint(space):
            own = current["tests"] if current else []
            stored = [t for t in storage_tests(self.storage, cell_of(cfg)) if t not in own]
            current = {**record(space, [*own, *stored]), "tests": own}
            self.records[name] = current
        return current

    def add_tests(self, name: str, study_name: str, cfg: Config, whats: Sequence[str]) -> None:
        """Record the table's test evaluations of cell ``name`` (each once), under its current search space, here and
        in the storage's study ``<study_name>:tests``."""
        current = self.records[name]
        known = {t["what"] for t in current["tests"]}
        new = [{"what": w, "search_space": current["fingerprint"], "at": _now()} for w in whats if w not in known]
        if not new:
            return
        current["tests"] += new
        if self.storage is not None:
            study = optuna.create_study(storage=self.storage, study_name=f"{study_name}:tests", load_if_exists=True)
            study.set_user_attr(CELL, cell_of(cfg))
            study.set_user_attr(TESTS, [*study.user_attrs.get(TESTS, []), *new])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.records, self.path)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
