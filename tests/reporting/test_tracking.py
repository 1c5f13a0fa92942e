"""Every W&B call, read back from the offline run files: what a run's summary, config and artifacts hold, and
that a disabled run records nothing and imports no wandb."""

import json
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from taskvec_ir.config.runtime import WandbConfig
from taskvec_ir.errors import UserError
from taskvec_ir.reporting import tracking
from taskvec_ir.reporting.lineage import Artifact, content_key
from taskvec_ir.storage.cache import cache_key, file_digest

from wandb_records import curve, logged_table, run_contents

MEANS = {"bm25": {"ndcg@10": 0.5}, "ir_model": {"ndcg@10": 0.6}, "task_arithmetic": {"ndcg@10": 0.7}}
PER_QUERY = {
    "bm25": {"ndcg@10": {"q1": 0.5, "q2": 0.5}},
    "ir_model": {"ndcg@10": {"q1": 0.4, "q2": 0.8}},
    "task_arithmetic": {"ndcg@10": {"q1": 0.9, "q2": 0.5}},
}
QUERIES = {"q1": "what helps", "q2": "what hurts"}
GIT = {"root": "/src/project", "commit": "0123abcd" * 5, "dirty": True, "remote_url": "https://example.org/p.git"}


def test_an_offline_run_holds_the_results_summary_config_seeds_and_git(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    settings = replace(
        WandbConfig(), mode="offline", group="g", tags=["t1"], name="trial/x/y/3-abc123", job_type="trial"
    )
    config = {"alpha": {"value": 0.5}, "lam": {"value": None}, "provenance": {"git": GIT}}
    with tracking.wandb_run(config, tmp_path, settings, {"merge.seed": 3}) as run:
        tracking.log_results(run, "test", MEANS, PER_QUERY, QUERIES, "ndcg@10")
        tracking.log_objective(run, "test", "ndcg@10", 0.7)
        tracking.update_config(run, {"alpha": {"value": 0.5, "used": 0.5}, "lam": {"value": None, "used": 0.3}})
        tracking.log_summary(run, {"alpha": 0.5, "lam": 0.3})
    contents = run_contents(tmp_path)
    summary = contents["summary"]
    assert summary["test/task_arithmetic/ndcg@10"] == 0.7
    assert "test/task_arithmetic/ndcg@10" not in contents["history"]  # a value per run, not a one-point chart
    # One objective key for every kind of job: one history step, its direction declared, a scalar summary, and
    # where it was measured and which way is better, as strings a runs table filters on.
    assert contents["history"]["objective"] == 0.7 and contents["metrics"]["objective"] == ["max"]
    assert summary["objective"] == 0.7
    described = {"objective_split": "test", "objective_measure": "ndcg@10", "objective_goal": "maximize"}
    assert {key: summary[key] for key in described} == described
    assert {key: contents["config"][key] for key in described} == described
    assert contents["config"]["alpha"] == {"value": 0.5, "used": 0.5}  # what ran, where parallel coordinates read
    assert contents["config"]["lam"] == {"value": None, "used": 0.3}
    assert contents["config"]["seeds"] == {"merge.seed": 3}
    assert (contents["name"], contents["group"], contents["job_type"], contents["tags"], contents["exit_code"]) == (
        "trial/x/y/3-abc123",
        "g",
        "trial",
        ["t1"],
        0,
    )
    assert contents["git"] == {"commit": GIT["commit"], "remote_url": GIT["remote_url"]}  # W&B's own git fields


def test_outside_a_git_work_tree_the_git_fields_are_taskvec_irs_own_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    config = {"provenance": {"git": None, "taskvec_ir_source": GIT}}  # an installed command run in a plain folder
    with tracking.wandb_run(config, tmp_path, replace(WandbConfig(), mode="offline"), {}):
        pass
    assert run_contents(tmp_path)["git"] == {"commit": GIT["commit"], "remote_url": GIT["remote_url"]}


def test_names_are_unique_with_a_short_suffix():
    names = {tracking.unique_name("table/tiny") for _ in range(50)}
    assert len(names) == 50 and all(re.fullmatch(r"table/tiny-[0-9a-f]{6}", name) for name in names)


def test_per_query_values_are_one_wide_row_per_query_with_the_change_tau_makes_and_its_histogram(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        tracking.log_results(run, "test", MEANS, PER_QUERY, QUERIES, "ndcg@10")
    rows = logged_table(tmp_path, "test/per_query")
    assert [(r["query_id"], r["query"]) for r in rows] == [("q1", "what helps"), ("q2", "what hurts")]
    assert rows[0]["ir_model/ndcg@10"] == 0.4 and rows[0]["task_arithmetic/ndcg@10"] == 0.9
    assert [r["Δ ndcg@10"] for r in rows] == pytest.approx([0.5, -0.3])  # TA − ΘT: sort by it
    histogram = logged_table(tmp_path, "test/delta_histogram_table")  # wandb.plot.histogram's data, charted by W&B
    assert [row["Δ ndcg@10"] for row in histogram] == pytest.approx([0.5, -0.3])


def test_a_curve_is_history_against_its_own_axis_and_stays_out_of_the_summary(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    points = [{"lam": lam, "alpha": 0.4, "value": value} for lam, value in ((0.0, 0.61), (0.5, 0.65), (1.0, 0.5))]
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        tracking.log_curve(run, "lambda_curve", "lam", [*points, {"lam": 1.5, "alpha": 0.4, "value": None}])
    contents = run_contents(tmp_path)
    # an undefined value is left out, not charted as 0
    assert curve(contents, "lambda_curve") == [*points, {"lam": 1.5, "alpha": 0.4}]
    assert contents["step_metrics"] == {"lambda_curve/*": "lambda_curve/lam"}  # λ is every line plot's x axis
    assert contents["metrics"]["lambda_curve/*"] == ["none"] and "lambda_curve" not in contents["summary"]


def test_artifacts_are_versions_of_one_name_with_their_key_as_alias_and_references_say_they_are_node_local(
    tmp_path, monkeypatch
):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    entries = []
    for key in ("k1", "k2"):  # two retriever settings of one dataset and split
        entry = tmp_path / "cache" / "bm25" / f"{key}.json"
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(key)
        entries.append(Artifact("bm25-scifact-dev", "candidates", entry, {"split": "dev"}, aliases=(key,)))
    report = tmp_path / "report"
    report.mkdir()
    (report / "results.md").write_text("| system |")
    uploaded = Artifact("report-sweep/s@1", "report", report, upload=True)
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        tracking.log_artifacts(run, [*entries, uploaded])
    logged = [a for a in run_contents(tmp_path)["artifacts"] if a["type"] in ("candidates", "report")]
    assert [(a["name"], set(a["aliases"])) for a in logged] == [
        ("bm25-scifact-dev", {"latest", "k1"}),
        ("bm25-scifact-dev", {"latest", "k2"}),
        ("report-sweep-s-1", {"latest", content_key(report)}),  # no cache entry: the key of its content
    ]
    assert content_key(report) == cache_key(files={"results.md": file_digest(report / "results.md")})
    assert logged[0]["metadata"]["reference"]["kind"].startswith("file:// reference to a node-local path")
    assert logged[0]["files"] == {"k1.json": entries[0].path.resolve().as_uri()}
    assert logged[2]["files"] == {"results.md": ""} and "reference" not in logged[2]["metadata"]  # uploaded


def test_an_offline_run_records_its_inputs_in_its_config(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    entry = tmp_path / "k.json"
    entry.write_text("{}")
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        candidates = Artifact("bm25-scifact-dev", "candidates", entry, {"split": "dev"}, aliases=("k",))
        tracking.use_artifacts(run, [candidates])
    inputs = run_contents(tmp_path)["config"]["inputs"]  # one JSON string: one column, not one per metadata field
    assert json.loads(inputs) == {
        "bm25-scifact-dev": {"type": "candidates", "aliases": ["k"], "metadata": {"split": "dev"}}
    }


def test_a_supervised_checkpoint_logs_its_labels_and_what_each_other_split_left_out(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    left_out = {"ids": [], "near_duplicate_ids": [], "document_ids": []}  # provenance.json's lists of ids
    provenance = {
        "objective": "supervised",
        "documents": 258,
        "corpus": {"name": "scifact"},
        "supervised": {
            "split": "train",
            "queries": 341,
            "pairs": 375,
            "documents": 258,
            "near_duplicate_overlap": 0.7,
            "exclude_relevant_documents": True,
            "excluded": {
                "dev": {**left_out, "queries": 164, "near_duplicates": 69, "documents": 37, "document_pairs": 59},
                "test": {**left_out, "queries": 2, "near_duplicates": 130, "documents": 59, "document_pairs": 82},
            },
        },
    }
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        tracking.log_adapted(run, "domain", provenance)
    summary = {key: value for key, value in run_contents(tmp_path)["summary"].items() if key.startswith("adapt/")}
    assert summary == {
        "adapt/domain/objective": "supervised",
        "adapt/domain/documents": 258,
        "adapt/domain/corpus": "scifact",
        "adapt/domain/labels/split": "train",
        "adapt/domain/labels/queries": 341,
        "adapt/domain/labels/pairs": 375,
        "adapt/domain/labels/near_duplicate_overlap": 0.7,
        "adapt/domain/labels/exclude_relevant_documents": True,
        "adapt/domain/labels/excluded_queries/dev": 164,
        "adapt/domain/labels/excluded_queries/test": 2,
        "adapt/domain/labels/excluded_near_duplicates/dev": 69,
        "adapt/domain/labels/excluded_near_duplicates/test": 130,
        "adapt/domain/labels/excluded_documents/dev": 37,
        "adapt/domain/labels/excluded_documents/test": 59,
        "adapt/domain/labels/excluded_document_pairs/dev": 59,
        "adapt/domain/labels/excluded_document_pairs/test": 82,
    }


def test_console_capture_and_system_metrics_are_the_users_to_turn_on(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    settings = replace(WandbConfig(), mode="offline", console="wrap", system_metrics=True)
    with tracking.wandb_run({}, tmp_path, settings, {}) as run:
        assert (run.settings.console, run.settings.x_disable_stats) == ("wrap", False)
    with tracking.wandb_run({}, tmp_path / "default", replace(WandbConfig(), mode="offline"), {}) as run:
        assert (run.settings.console, run.settings.x_disable_stats) == ("off", True)


# The x_ settings W&B's own docs tell users to set, each with the page that does; any other is an internal.
DOCUMENTED_X_SETTINGS = {
    "x_disable_stats": "https://docs.wandb.ai/support/how_can_i_disable_logging_of_system_metrics_to_wb",
}


def test_no_private_wandb_name_and_no_undocumented_x_setting_is_used():
    """wandb's private names (``run._log_artifact``, ``settings._offline``) and its ``x_`` settings ("not part of the
    public API and may change without notice") change without notice: only those W&B documents for users, cited
    where they are used."""
    source = Path(tracking.__file__).resolve().parents[1]
    lines = [
        (path, number, line)
        for path in source.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
    ]
    private = [
        f"{p.name}:{n}: {line.strip()}"
        for p, n, line in lines
        if re.search(r"\b(run|wandb|settings|artifact)\._[a-z]", line)
    ]
    assert not private
    used = {name for _, _, line in lines for name in re.findall(r"\bx_[a-z_]+", line)}
    assert used <= set(DOCUMENTED_X_SETTINGS), used - set(DOCUMENTED_X_SETTINGS)
    for name, page in DOCUMENTED_X_SETTINGS.items():
        assert page in Path(tracking.__file__).read_text(), f"{name}: cite {page} where it is set"


def test_a_chart_reads_no_dotted_field(tmp_path, monkeypatch):
    """Vega reads ``alpha.value`` as a nested field: a chart of it would be empty."""
    monkeypatch.delenv("WANDB_MODE", raising=False)
    columns = ["trial", "objective", "lam", "alpha.value", "alpha.extra.sre"]
    with tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}) as run:
        tracking.log_sensitivity(run, "ndcg@10", columns, [[0, 0.5, 0.3, 0.4, 0.1], [1, 0.6, 0.2, 0.5, 0.2]])
    charts = run_contents(tmp_path)["config"]["_wandb"]["visualize"]
    fields = {key: chart["panel_config"]["fieldSettings"] for key, chart in charts.items()}
    assert fields == {
        "sensitivity/lam": {"x": "lam", "y": "objective"},
        "sensitivity/alpha": {"x": "alpha", "y": "objective"},
        "sensitivity/alpha/extra/sre": {"x": "alpha/extra/sre", "y": "objective"},
    }
    assert logged_table(tmp_path, "sensitivity/trials")[1] == {
        "trial": 1,
        "objective": 0.6,
        "lam": 0.2,
        "alpha": 0.5,
        "alpha/extra/sre": 0.2,
    }


def test_a_run_whose_job_raises_is_recorded_as_failed(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_MODE", raising=False)
    with pytest.raises(RuntimeError), tracking.wandb_run({}, tmp_path, replace(WandbConfig(), mode="offline"), {}):
        raise RuntimeError("the job failed")
    assert run_contents(tmp_path)["exit_code"] == 1


def test_the_environment_wins_over_the_config_and_a_disabled_run_imports_no_wandb(tmp_path):
    code = (
        "import sys; from pathlib import Path; from taskvec_ir.reporting import tracking; "
        "from taskvec_ir.config.runtime import WandbConfig; "
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
