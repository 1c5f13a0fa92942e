"""Where a sweep's study lives: a relative sqlite storage made absolute for jobs that run elsewhere."""

from taskvec_ir.runs.sweeping.study_storage import absolute_storage


def test_a_relative_sqlite_storage_is_made_absolute_and_others_are_kept(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_storage("sqlite:///studies/a.db") == f"sqlite:///{tmp_path}/studies/a.db"
    assert (tmp_path / "studies").is_dir()
    for kept in ("sqlite:////abs/a.db", "postgresql://u@localhost/db", None):
        assert absolute_storage(kept) == kept
