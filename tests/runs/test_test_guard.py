"""The guard against tuning on test on real sqlite studies and a table's record: a search space set after a test
result of the same cell under another search space is marked (and refused when strict); an unchanged one, a fresh
one before any test, and one of another cell are not."""

import json

import optuna
import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.runs import test_guard
from taskvec_ir.runs.search_space import search_space

COARSE = search_space(["alpha.value=choice(0.0,0.5,1.0)"])[0]
REFINED = search_space(["alpha.value=choice(0.4,0.45,0.5,0.55,0.6)"])[0]
DEV = "+dataset.splits.dev={sample_of:test,fraction:0.3,seed:1}"  # Cranfield has no dev split to sweep on


@pytest.fixture
def cell_cfg(cranfield_cfg):
    return cranfield_cfg("sweep=paper_grid", DEV)


def space(dimensions, cfg):
    return test_guard.search_space_of(dimensions, cfg.lam, cfg.retriever.dense)


def new_study(storage: str, name: str) -> optuna.Study:
    return optuna.create_study(storage=storage, study_name=name, direction="maximize")


def test_the_search_space_is_the_swept_values_and_the_lambda_grid_where_lambda_is_chosen_from_it(cell_cfg):
    found = space(COARSE, cell_cfg)
    assert found == {"alpha.value": "choice(0.0, 0.5, 1.0)", "lam.grid": [float(x) for x in cell_cfg.lam.grid]}
    assert len(found["lam.grid"]) == 21  # paper_grid: lam=dev_grid
    fixed_lam = test_guard.search_space_of(COARSE, type(cell_cfg.lam)(value=0.3), dense=False)
    assert fixed_lam == {"alpha.value": "choice(0.0, 0.5, 1.0)"}
    assert test_guard.fingerprint(found) != test_guard.fingerprint(space(REFINED, cell_cfg))
    assert test_guard.fingerprint(found) != test_guard.fingerprint(fixed_lam)  # a λ grid is part of the search


def test_a_grid_refined_after_the_studys_test_evaluation_is_marked_and_refused_when_strict(cell_cfg, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = new_study(storage, "s")
    first = test_guard.set_search_space(study, storage, cell_cfg, space(COARSE, cell_cfg))
    assert test_guard.tuned_after_test(first) == []  # a new study: no test seen
    test_guard.check(first, True, "sweep.strict_test_guard", "study s")  # strict, nothing to refuse
    test_guard.add_test(study, first, "study s: final evaluation of trial 1")
    # Rerun with the same grid: the record is the first one, not marked.
    assert test_guard.set_search_space(study, storage, cell_cfg, space(COARSE, cell_cfg)) == first
    # The grid refined around the test result: marked, naming the test result it followed.
    refined = test_guard.set_search_space(study, storage, cell_cfg, space(REFINED, cell_cfg))
    seen = test_guard.tuned_after_test(refined)
    assert [t["what"] for t in seen] == ["study s: final evaluation of trial 1"]
    assert seen[0]["search_space"] == first["fingerprint"] != refined["fingerprint"]
    assert study.user_attrs["search_space"] == refined  # recorded in the study (a resumed sweeper reads it)
    summary = test_guard.summary(refined)
    assert summary["tuned_after_test"] is True and summary["search_space"] == refined["fingerprint"]
    assert "after 1 test evaluation(s)" in test_guard.describe(refined)
    test_guard.check(refined, False, "sweep.strict_test_guard", "study s")  # not strict: evaluated, marked
    with pytest.raises(UserError) as refused:
        test_guard.check(refined, True, "sweep.strict_test_guard", "study s's best setting")
    assert str(refused.value).startswith("sweep.strict_test_guard: study s's best setting would be evaluated on test")
    assert "sweep.strict_test_guard=false" in str(refused.value)
    # Going back to the grid the test result was made with is not tuned on it (the result is of that grid).
    back = test_guard.set_search_space(study, storage, cell_cfg, space(COARSE, cell_cfg))
    assert test_guard.tuned_after_test(back) == [] and len(back["tests_seen"]) == 1


def test_another_study_of_the_same_cell_in_the_storage_sees_its_test_evaluations(cell_cfg, cranfield_cfg, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    coarse = test_guard.set_search_space(new_study(storage, "coarse"), storage, cell_cfg, space(COARSE, cell_cfg))
    test_guard.add_test(optuna.load_study(study_name="coarse", storage=storage), coarse, "coarse: final")
    refined = test_guard.set_search_space(new_study(storage, "refined"), storage, cell_cfg, space(REFINED, cell_cfg))
    assert [t["what"] for t in test_guard.tuned_after_test(refined)] == ["coarse: final"]
    same = test_guard.set_search_space(new_study(storage, "again"), storage, cell_cfg, space(COARSE, cell_cfg))
    assert test_guard.tuned_after_test(same) == []  # the unchanged grid, in a new study
    other_cell = cranfield_cfg("sweep=paper_grid", DEV, "retriever.top_k=7")
    other = test_guard.set_search_space(new_study(storage, "other"), storage, other_cell, space(REFINED, other_cell))
    assert other["tests_seen"] == []  # another cell's test results are not this one's


def test_a_fresh_study_with_the_refined_grid_before_any_test_is_not_marked(cell_cfg, tmp_path):
    storage = f"sqlite:///{tmp_path / 'fresh' / 'optuna.db'}"
    (tmp_path / "fresh").mkdir()
    refined = test_guard.set_search_space(new_study(storage, "s"), storage, cell_cfg, space(REFINED, cell_cfg))
    assert refined["tests_seen"] == [] and test_guard.summary(refined)["tuned_after_test"] is False
    assert test_guard.summary(None)["tuned_after_test"] is False  # a study from before the guard: nothing recorded
    # A study in memory sees its own test evaluations only.
    memory = optuna.create_study(direction="maximize")
    first = test_guard.set_search_space(memory, None, cell_cfg, space(COARSE, cell_cfg))
    test_guard.add_test(memory, first, "final")
    assert (
        len(test_guard.tuned_after_test(test_guard.set_search_space(memory, None, cell_cfg, space(REFINED, cell_cfg))))
        == 1
    )


def test_a_tables_record_keeps_its_own_test_evaluations_and_shares_them_through_its_storage(cell_cfg, tmp_path):
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    path, cell = tmp_path / "t" / "test_guard.json", "cranfield/tiny/task_arithmetic"
    guard = test_guard.TableGuard(path, storage)
    first = guard.set_search_space(cell, cell_cfg, space(COARSE, cell_cfg))
    assert first["tests_seen"] == [] and first["tests"] == []
    guard.add_tests(cell, f"t/{cell}", cell_cfg, ["table t: cross_validation", "table t: nqc"])
    guard.add_tests(cell, f"t/{cell}", cell_cfg, ["table t: nqc"])  # once each
    guard.save()
    again = test_guard.TableGuard(path, storage)  # the next run of the table
    assert [t["what"] for t in again.records[cell]["tests"]] == ["table t: cross_validation", "table t: nqc"]
    unchanged = again.set_search_space(cell, cell_cfg, space(COARSE, cell_cfg))
    assert test_guard.tuned_after_test(unchanged) == []
    # Another table sharing the storage (table.storage), its grid refined: it sees the first table's test results.
    other = test_guard.TableGuard(tmp_path / "u" / "test_guard.json", storage)
    refined = other.set_search_space(cell, cell_cfg, space(REFINED, cell_cfg))
    assert [t["what"] for t in test_guard.tuned_after_test(refined)] == ["table t: cross_validation", "table t: nqc"]
    assert other.set_search_space(cell, cell_cfg, space(REFINED, cell_cfg)) == refined  # kept while unchanged
    # A sweep's test evaluation of the cell in the storage, then the first table's grid refined: all three seen.
    study = new_study(storage, f"t/{cell}")
    test_guard.add_test(study, test_guard.set_search_space(study, storage, cell_cfg, space(COARSE, cell_cfg)), "dev")
    refined = again.set_search_space(cell, cell_cfg, space(REFINED, cell_cfg))
    assert sorted(t["what"] for t in test_guard.tuned_after_test(refined)) == [
        "dev",
        "table t: cross_validation",
        "table t: nqc",
    ]
    again.save()
    assert json.loads(path.read_text())[cell]["fingerprint"] == refined["fingerprint"]
