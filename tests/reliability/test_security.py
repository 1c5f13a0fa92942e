"""Untrusted inputs: checkpoints never run code unless the user says so, and secrets never reach a file.

- Weights are read from safetensors where a checkpoint has them; PyTorch ``.bin`` files are only ever loaded
  as plain tensors (``weights_only``): one holding anything else is refused, and its code never runs.
- Code shipped with a checkpoint (``auto_map``) runs only with ``model.scorer.trust_remote_code=true``.
- The W&B API key and Hugging Face token in the environment appear in no log, config or run file.
"""

import json
import shutil
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
import torch

from taskvec_ir.config.composed import CONFIG_DIR
from taskvec_ir.config.model import ScorerConfig
from taskvec_ir.errors import UserError
from taskvec_ir.models.checkpoints import CheckpointError, CheckpointReader, _hub_snapshot, resolve_model_source
from taskvec_ir.models.scoring import load_scorer
from taskvec_ir.runs.compose import compose

from procs import FAKE_HF_TOKEN, FAKE_WANDB_KEY, files_under, run_taskvec_ir
from tiny_models import tiny_bert

SETTINGS = ScorerConfig(show_progress=False, max_length=32)


class _Payload:
    """Unpickling this runs code: it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "code ran"))


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("ce") / "model", 0, "cross_encoder")


def _copy(folder: Path, to: Path) -> Path:
    shutil.copytree(folder, to)
    return to


def test_safetensors_are_read_and_a_bin_beside_them_is_never_unpickled(cross_encoder, tmp_path):
    folder, marker = _copy(cross_encoder, tmp_path / "both"), tmp_path / "pwned"
    torch.save({"classifier.weight": _Payload(marker)}, folder / "pytorch_model.bin")
    reader = CheckpointReader(folder)
    assert "bert.embeddings.word_embeddings.weight" in reader and reader.shape("classifier.weight") == (1, 16)
    scorer = load_scorer("cross_encoder", folder, SETTINGS)
    assert scorer.score({"q": "wing flow"}, {"d": "flow on a wing"}, {"q": {"d": 1.0}})["q"]["d"] == pytest.approx(
        load_scorer("cross_encoder", cross_encoder, SETTINGS).score(
            {"q": "wing flow"}, {"d": "flow on a wing"}, {"q": {"d": 1.0}}
        )["q"]["d"]
    )
    assert not marker.exists()


def test_bin_only_checkpoints_load_as_tensors_without_unpickling_code(tmp_path):
    torch.save({"w": torch.arange(3.0)}, tmp_path / "pytorch_model.bin")
    reader = CheckpointReader(tmp_path)
    first = reader["w"]
    first.add_(1)  # callers may write into what they get
    assert torch.equal(reader["w"], torch.arange(3.0))

    marker = tmp_path / "pwned"
    torch.save({"w": _Payload(marker)}, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="holds more than tensors and is not unpickled"):
        CheckpointReader(tmp_path)
    assert not marker.exists()


def test_a_scorer_over_bin_only_weights_loads_tensors_and_refuses_code(cross_encoder, tmp_path):
    plain = _copy(cross_encoder, tmp_path / "plain")
    from safetensors.torch import load_file

    torch.save(load_file(plain / "model.safetensors"), plain / "pytorch_model.bin")
    (plain / "model.safetensors").unlink()
    reference = load_scorer("cross_encoder", cross_encoder, SETTINGS).module.classifier.weight
    assert torch.equal(load_scorer("cross_encoder", plain, SETTINGS).module.classifier.weight, reference)

    marker = tmp_path / "pwned"
    torch.save({"classifier.weight": _Payload(marker)}, plain / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"model.ir \(.*\) has PyTorch weights that hold more than tensors"):
        load_scorer("cross_encoder", plain, SETTINGS)
    assert not marker.exists()


@pytest.mark.parametrize(
    "repo_files, wanted, unwanted",
    [
        (["config.json", "model.safetensors", "pytorch_model.bin"], "*.safetensors", "pytorch_model*.bin"),
        (["config.json", "pytorch_model.bin"], "pytorch_model*.bin", "*.safetensors"),
    ],
)
def test_hub_downloads_take_safetensors_when_the_repository_has_them(
    monkeypatch, tmp_path, repo_files, wanted, unwanted
):
    import huggingface_hub

    asked = {}

    def snapshot_download(repo_id, revision=None, allow_patterns=None, **kwargs):
        asked.update(repo_id=repo_id, revision=revision, patterns=allow_patterns)
        return str(tmp_path)

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(huggingface_hub, "list_repo_files", lambda repo_id, revision=None: repo_files)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    _hub_snapshot.cache_clear()
    try:
        assert resolve_model_source("org/model@abc123", "model.ir") == tmp_path
    finally:
        _hub_snapshot.cache_clear()
    assert asked["repo_id"] == "org/model" and asked["revision"] == "abc123"
    assert wanted in asked["patterns"] and unwanted not in asked["patterns"]


def _with_own_code(folder: Path, to: Path, marker: Path) -> Path:
    """``folder`` as a checkpoint whose config asks for its own model code (which writes ``marker``)."""
    folder = _copy(folder, to)
    config = json.loads((folder / "config.json").read_text())
    config.update(
        model_type="taskvec-custom",
        auto_map={
            "AutoConfig": "custom.CustomConfig",
            "AutoModel": "custom.CustomModel",
            "AutoModelForSequenceClassification": "custom.CustomClassifier",
        },
    )
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "custom.py").write_text(f"""
from pathlib import Path
Path({str(marker)!r}).write_text("code ran")
from transformers import BertConfig, BertForSequenceClassification, BertModel

class CustomConfig(BertConfig):
    model_type = "taskvec-custom"

class CustomModel(BertModel):
    config_class = CustomConfig

class CustomClassifier(BertForSequenceClassification):
    config_class = CustomConfig
""")
    return folder


@pytest.mark.parametrize("kind, head", [("cross_encoder", "cross_encoder"), ("bi_encoder", "bi_encoder")])
def test_checkpoint_code_runs_only_when_the_config_turns_it_on(tmp_path, kind, head):
    marker = tmp_path / "ran"
    folder = _with_own_code(tiny_bert(tmp_path / "source", 0, head), tmp_path / "custom", marker)
    with pytest.raises(
        CheckpointError,
        match=r"model.ir \(.*\) ships its own model code .* "
        r"set model.scorer.trust_remote_code=true",
    ):
        load_scorer(kind, folder, SETTINGS)
    assert not marker.exists()
    load_scorer(kind, folder, replace(SETTINGS, trust_remote_code=True))  # the user's explicit opt-in
    assert marker.exists()


def test_trust_remote_code_is_off_unless_a_model_config_turns_it_on():
    assert ScorerConfig().trust_remote_code is False
    models = sorted(p.stem for p in (Path(CONFIG_DIR) / "model").glob("*.yaml"))
    for model in models:
        assert compose([f"model={model}"]).model.scorer.trust_remote_code is False, model


def test_no_secret_is_written_to_any_log_config_or_run_file(app_runs):
    for name in ("twin_a", "twin_b"):
        run = app_runs[name]
        result = run["result"]
        assert result.returncode == 0 and "W&B is unreachable" in result.stderr + result.stdout  # the key was tried
        files = files_under(run["out"], run["home"])
        assert any(p.name == "app.log" for p in files) and any(p.suffix == ".wandb" for p in files)
        assert any(".hydra" in p.parts for p in files)
        for secret in (FAKE_WANDB_KEY, FAKE_HF_TOKEN):
            assert secret not in result.stdout + result.stderr
            leaks = [str(p) for p in files if secret.encode() in p.read_bytes()]
            assert not leaks, f"{secret[:8]}... written to {leaks}"


def test_a_storage_password_never_reaches_the_results_file(tmp_path):
    # needs wiring: trials.write_results writes outputs.redact_url(storage), and the sweep's "Study ... in"
    # log line shows the same
    from taskvec_ir.runs.sweeping.trials import write_results

    study = optuna.create_study(storage=f"sqlite:///{tmp_path / 'study.db'}", direction="maximize")
    trial = study.ask()
    trial.set_user_attr("lam", 0.3)
    study.tell(trial, 0.5)
    write_results(study, tmp_path, "postgresql://optuna:s3cret-pw@db.example:5432/sweeps")
    text = (tmp_path / "optimization_results.yaml").read_text()
    assert "s3cret-pw" not in text and "postgresql://optuna:***@db.example:5432/sweeps" in text


def test_redact_url_hides_only_the_password():
    from taskvec_ir.storage.outputs import redact_url

    assert redact_url("postgresql://user:pw@db:5432/optuna") == "postgresql://user:***@db:5432/optuna"
    assert redact_url("mysql://user@db/optuna") == "mysql://user@db/optuna"
    assert redact_url("sqlite:////abs/optuna.db") == "sqlite:////abs/optuna.db" and redact_url(None) is None


@pytest.mark.parametrize(
    "url, without",
    [
        ("postgresql://optuna:s3cret-pw@db:5432/sweeps", "postgresql://optuna@db:5432/sweeps"),
        (
            "postgresql://optuna@db/sweeps?password=s3cret-pw&sslmode=require",
            "postgresql://optuna@db/sweeps?sslmode=require",
        ),
    ],
)
def test_a_storage_url_with_a_password_is_refused_naming_the_url_without_it(url, without):
    from taskvec_ir.storage.outputs import refuse_password

    with pytest.raises(UserError) as refused:
        refuse_password(url, "hydra.sweeper.storage")
    message = str(refused.value)
    assert f"hydra.sweeper.storage={without}" in message and "~/.pgpass" in message and "s3cret-pw" not in message
    for fine in ("postgresql://optuna@db:5432/sweeps", "sqlite:////abs/optuna.db", None):
        refuse_password(fine, "hydra.sweeper.storage")


@pytest.mark.slow
def test_a_table_command_refusing_its_storage_password_leaves_no_copy_of_it(mirror_dir, tmp_path):
    """A single run (task=table) is checked after Hydra saved its command line into .hydra/: the refusal removes
    that copy, so no file of the run holds the password."""
    out = tmp_path / "table"
    overrides = [
        "task=table",
        "table.name=t",
        "table.storage=postgresql://optuna:s3cret-pw@localhost/sweeps",
        "+table.datasets.cranfield=[]",
        "+table.models.minilm_demo=[]",
    ]
    result = run_taskvec_ir(out, overrides, mirror_dir)
    assert result.returncode == 1 and "table.storage holds the database's password" in result.stderr
    assert "s3cret-pw" not in result.stdout + result.stderr
    assert not [path for path in files_under(out) if "s3cret-pw" in path.read_text(errors="replace")]
