"""What a run used and made, as plain data: artifact names W&B accepts, and the code that ran."""

import subprocess
from pathlib import Path

from taskvec_ir.reporting import lineage
from taskvec_ir.reporting.lineage import Artifact


def test_an_artifact_name_keeps_only_what_wandb_accepts():
    artifact = Artifact("report-table/tiny@v2:x", "report", Path("x"))
    assert artifact.name == "report-table-tiny-v2-x"
    assert Artifact("task-vector-ab12.cd_3", "task_vector", Path("x")).name == "task-vector-ab12.cd_3"
    assert Artifact("x", "report", Path("x"), aliases=("a/b:c",)).aliases == ("a-b-c",)


def test_provenance_names_the_users_commit_and_whether_their_tree_was_dirty(tmp_path):
    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    git("init", "-q")
    (tmp_path / "exp.yaml").write_text("a: 1\n")
    git("add", "exp.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = subprocess.run(["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    clean = lineage._git(tmp_path)
    assert clean == {"root": str(tmp_path.resolve()), "commit": head.strip(), "dirty": False, "remote_url": None}
    (tmp_path / "exp.yaml").write_text("a: 2\n")
    git("remote", "add", "origin", "https://user:token@example.org/group/project.git")
    changed = lineage._git(tmp_path)
    assert changed["dirty"] is True
    assert changed["remote_url"] == "https://example.org/group/project.git"  # W&B's field, without the token
    assert lineage._git(tmp_path / "..") is None or lineage._git(tmp_path / "..")["root"] != str(tmp_path)


def test_provenance_records_the_versions_of_the_packages_that_decide_the_numbers(tmp_path):
    provenance = lineage.code_provenance(str(tmp_path))
    assert set(provenance["packages"]) == set(lineage.PACKAGES)
    assert provenance["packages"]["torch"] and provenance["packages"]["nltk"]
    assert provenance["git"] is None  # an empty folder is no work tree
