"""The paper's model configs end to end through the Hub protocol: tiny checkpoints of each architecture, served
under the paper's repository ids by a real mirror server (olah, ``hub_mirror``), downloaded by the normal path
(snapshot_download via HF_ENDPOINT, HF_HUB_OFFLINE unset), merged, and scored by ``taskvec-ir``."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from beir_folders import write_beir_folder
from hub_mirror import commit, olah_mirror, repo_folder
from tiny_models import tiny_bert, tiny_llama, tiny_t5

pytestmark = pytest.mark.slow  # a mirror server and taskvec-ir commands

REPO = Path(__file__).resolve().parents[1]
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"
ROLES = ("base", "domain", "ir")


def _encoder(arch: str, **options):
    return lambda folder, seed, role: tiny_bert(
        folder, seed, "bi_encoder" if role == "ir" else "mlm", arch=arch, **options
    )


# conf/model/<config> -> a tiny checkpoint of its architecture for a role: a pre-trained base and domain model
# (an MLM head for the encoders) and the IR model (sentence-transformers layout for the bi-encoders).
PAPER_TRIPLES = {
    "monot5_base": lambda folder, seed, role: tiny_t5(folder, seed),
    "monot5_large": lambda folder, seed, role: tiny_t5(folder, seed),
    "mt5_base": lambda folder, seed, role: tiny_t5(folder, seed, mt5=True),
    "roberta_bi": _encoder("roberta"),
    "distilbert_bi": _encoder("distilbert", dot_product=True),
    "llama2_7b": lambda folder, seed, role: tiny_llama(folder, seed),
}
PINNED = "castorini/monot5-base-msmarco"  # a repository with two revisions: v1 (tagged), then main
DENIED = "meta-llama/Llama-2-70b-hf"  # a repository the mirror refuses, as it would one it may not serve


def repo_ids(config: str) -> dict[str, str]:
    """The Hub ids of a model config's checkpoints, by role, as the config names them."""
    model = OmegaConf.load(REPO / "conf" / "model" / f"{config}.yaml")
    return {role: OmegaConf.select(model, role) for role in ROLES}


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """The mirror's endpoint, serving a tiny checkpoint under every Hub id of the paper's model configs, and the
    commit of PINNED's first revision."""
    mirrors = tmp_path_factory.mktemp("mirrors")
    commits = {}
    for seed, (config, build) in enumerate(PAPER_TRIPLES.items()):
        for offset, (role, repo_id) in enumerate(repo_ids(config).items()):
            folder = build(repo_folder(mirrors, repo_id), 3 * seed + offset, role)
            commits[repo_id] = commit(folder, "tiny checkpoint", tag="v1" if repo_id == PINNED else None)
    # PINNED gets a second revision: other weights on main, the first still reachable by its sha and tag v1.
    tiny_t5(repo_folder(mirrors, PINNED), seed=99)
    commit(repo_folder(mirrors, PINNED), "retrained")
    with olah_mirror(mirrors, tmp_path_factory.mktemp("olah"), denied=(DENIED,)) as endpoint:
        yield endpoint, mirrors, commits[PINNED]


def hub_env(endpoint: str, hf_home: Path) -> dict:
    """The environment of a user behind a mirror: online (HF_HUB_OFFLINE unset), HF_ENDPOINT naming it."""
    env = {**os.environ, "HF_ENDPOINT": endpoint, "HF_HOME": str(hf_home)}
    env.pop("HF_HUB_OFFLINE", None)
    return env


def test_every_paper_triple_downloads_through_the_mirror_and_runs_end_to_end(mirror, tmp_path):
    endpoint, _, _ = mirror
    collection = write_beir_folder(tmp_path / "mini", {"test": 4}, docs=12)
    configs = list(PAPER_TRIPLES)
    result = subprocess.run(
        [
            str(TASKVEC_IR),
            "-m",
            f"model={','.join(configs)}",
            "dataset=beir",
            "dataset.name=mini",
            f"dataset.beir_path={collection}",
            "retriever.top_k=3",
            "alpha.value=0.5",
            "lam.value=0.5",
            # Small inputs and batches: tiny models, a few seconds per triple.
            "model.scorer.batch_size=4",
            "model.scorer.max_length=48",
            "model.scorer.max_query_length=8",
            "model.scorer.show_progress=false",
            f"cache.dir={tmp_path / 'cache'}",
            f"hydra.sweep.dir={tmp_path / 'runs'}",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        env={**hub_env(endpoint, tmp_path / "hf"), "WANDB_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-4000:]
    for job, config in enumerate(configs):
        metrics = json.loads((tmp_path / "runs" / str(job) / "metrics.json").read_text())
        assert set(metrics["test"]) == {"bm25", "ir_model", "task_arithmetic"}, config
        assert metrics["merge"]["vectors"]["domain"]["norm"] > 0, config  # τ = ΘD − Θ0 of the mirror's weights
        # Base and domain keys aligned to ΘT's (roberta./distilbert. prefixes, sentence-transformers wrapper).
        assert metrics["merge"]["changed_fraction"] > 0.8, config
    # Every checkpoint came through the Hub cache, downloaded from the mirror.
    downloaded = {p.name for p in (tmp_path / "hf" / "hub").glob("models--*")}
    wanted = {f"models--{i.replace('/', '--')}" for c in configs for i in repo_ids(c).values()}
    assert wanted <= downloaded


RESOLVE = """
import json, sys
from taskvec_ir.models.checkpoints import CheckpointError, resolve_model_source
answers = {}
for source in sys.argv[1:]:
    try:
        answers[source] = str(resolve_model_source(source, "model.ir"))
    except CheckpointError as error:
        answers[source] = "error: " + str(error)
print(json.dumps(answers))
"""


def resolve(env: dict, *sources: str) -> dict[str, str]:
    """Each source's folder, or its error message, from resolve_model_source in a process with ``env``."""
    result = subprocess.run(
        [sys.executable, "-c", RESOLVE, *sources], capture_output=True, text=True, timeout=120, env=env, check=True
    )
    return json.loads(result.stdout.splitlines()[-1])


def test_a_pinned_revision_gets_that_revisions_weights(mirror, tmp_path):
    endpoint, mirrors, first = mirror
    folders = resolve(hub_env(endpoint, tmp_path / "hf"), f"{PINNED}@{first}", f"{PINNED}@v1", PINNED)

    def weights(revision: str) -> bytes:
        return subprocess.run(
            ["git", "-C", str(repo_folder(mirrors, PINNED)), "show", f"{revision}:model.safetensors"],
            capture_output=True,
            check=True,
        ).stdout

    assert weights("v1") != weights("main")
    assert Path(folders[f"{PINNED}@{first}"], "model.safetensors").read_bytes() == weights("v1")
    assert Path(folders[f"{PINNED}@v1"], "model.safetensors").read_bytes() == weights("v1")
    assert Path(folders[PINNED], "model.safetensors").read_bytes() == weights("main")


def test_missing_refused_and_unknown_revisions_and_an_unreachable_mirror_are_one_line_errors(mirror, tmp_path):
    endpoint, _, _ = mirror
    missing, bad_revision = "castorini/no-such-model", f"{PINNED}@{'0' * 40}"
    answers = resolve(hub_env(endpoint, tmp_path / "hf"), missing, DENIED, bad_revision)
    assert all("\n" not in answer and answer.startswith("error: model.ir: ") for answer in answers.values())
    for repo_id in (missing, DENIED):
        assert f"'{repo_id}' is not on {endpoint} (HF_ENDPOINT), or needs access" in answers[repo_id]
        assert "HF_TOKEN" in answers[repo_id]
    assert f"has no revision '{'0' * 40}' on {endpoint}" in answers[bad_revision]
    closed = "http://127.0.0.1:9"  # the discard port: nothing listens there
    [unreachable] = resolve(hub_env(closed, tmp_path / "hf"), PINNED).values()  # after huggingface_hub's retries
    assert unreachable.startswith(f"error: model.ir: cannot reach {closed} (HF_ENDPOINT) for '{PINNED}'")
    assert "\n" not in unreachable


def test_a_missing_checkpoint_stops_the_command_before_any_scoring(mirror, tmp_path):
    endpoint, _, _ = mirror
    result = subprocess.run(
        [
            str(TASKVEC_IR),
            "model=monot5_base",
            "model.domain=razent/no-such-model",
            "dataset=beir",
            "dataset.name=mini",
            f"dataset.beir_path={write_beir_folder(tmp_path / 'mini', {'test': 2}, docs=4)}",
            f"cache.dir={tmp_path / 'cache'}",
            f"hydra.run.dir={tmp_path / 'out'}",
        ],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
        env={**hub_env(endpoint, tmp_path / "hf"), "WANDB_MODE": "disabled"},
    )
    assert result.returncode != 0
    assert f"model.domain: 'razent/no-such-model' is not on {endpoint}" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "out" / "metrics.json").exists() and not (tmp_path / "out" / "runs").exists()
