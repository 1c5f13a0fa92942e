"""Every W&B call, read back from the offline run files: what a run's summary, config and artifacts hold, and
that a disabled run records nothing and imports no wandb."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from taskvec_ir.config.schema import WandbConfig
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import tracking
from taskvec_ir.reporting.lineage import Artifact

from wandb_records import run_contents

MEANS = {"bm25": {"ndcg@10": 0.5}, "task_arithmetic": {"ndcg@10": 0.7}}
PER_QUERY = {s: {"ndcg@10": {"q1": v, "q2": v}} for s, v in (("bm25", 0.5), ("task_arithmetic", 0.7))}


def test_an_offline_run_holds_the_results_summary_config_seeds_and_inputs(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    entry = tmp_path / "cache" / "bm25" / "k.json"
    entry.parent.mkdir(parents=True)
    entry.write_text("{}")
    settings = replace(WandbConfig(), mode="offline", group="g", tags=["t1"])
    with tracking.wandb_run({"alpha": {"value": 0.5}}, tmp_path, settings, {"merge.seed": 3}, job_type="trial") as run:
        tracking.log_results(run, "test", MEANS, PER_QUERY)
        tracking.log_summary(run, {"alpha": 0.5, "lam": 0.3})
        tracking.use_artifacts(run, [Artifact("bm25-k", "candidates", entry, {"split": "test"})])
    contents = run_contents(tmp_path)
    assert contents["summary"]["test/task_arithmetic/ndcg@10"] == 0.7 and contents["summary"]["lam"] == 0.3
    assert contents["config"]["alpha"] == {"value": 0.5} and contents["config"]["seeds"] == {"merge.seed": 3}
    assert (contents["group"], contents["job_type"], contents["tags"], contents["exit_code"]) == (
        "g",
        "trial",
        ["t1"],
        0,
    )
    (used,) = [artifact for artifact in contents["artifacts"] if artifact["used"]]  # the others: W&B's tables
    assert used["name"] == "bm25-k" and used["used"] and used["metadata"] == {"split": "test"}


def test_a_run_whose_job_raises_is_recorded_as_failed(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(RuntimeError), tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}):
        raise RuntimeError("the job failed")
    assert run_contents(tmp_path)["exit_code"] == 1


def test_the_environment_wins_over_the_config_and_a_disabled_run_imports_no_wandb(tmp_path):
    code = (
        "import sys; from pathlib import Path; from taskvec_ir.reporting import tracking; "
        "from taskvec_ir.config.schema import WandbConfig; "
        f"cm = tracking.wandb_run({{}}, Path({str(tmp_path)!r}), WandbConfig(mode='online'), {{}}); "
        "run = cm.__enter__(); tracking.log_summary(run, {'x': 1}); "
        "print(run.disabled, 'wandb' in sys.modules)"
    )
    env = {"WANDB_MODE": "disabled", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert done.stdout.split() == ["True", "False"]
    assert not (Path(tmp_path) / "wandb").exists()


def test_an_unknown_mode_is_refused_naming_the_key(monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "sometimes")
    with pytest.raises(UserError, match="wandb.mode: 'sometimes' is not one of offline, online, disabled"):
        tracking.tracking_mode("offline")
