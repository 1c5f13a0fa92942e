"""The ``taskvec-ir`` command as a user runs it: its help, version and the order of its arguments, and runs end to
end on real Cranfield through the offline mirror (slow)."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.bm25_index import BM25Index
from taskvec_ir.reporting.lineage import content_key

from wandb_records import run_contents

SYSTEMS = {"bm25", "ir_model", "task_arithmetic"}
TASKVEC_IR = Path(sys.executable).parent / "taskvec-ir"  # the installed console script


def taskvec_ir(out_dir: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TASKVEC_IR), f"hydra.run.dir={out_dir}", *overrides],
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=600,
        env={key: value for key, value in {**os.environ, **(env or {})}.items() if value is not None},  # None unsets
    )


def _model(triple) -> list[str]:
    return [f"model.{role}={path}" for role, path in triple.items()] + ["model.scorer.show_progress=false"]


def command(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(TASKVEC_IR), *arguments], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120
    )


def test_help_says_what_the_tool_does_with_examples_outputs_and_the_config_groups():
    shown = command("--help")
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert text.startswith("taskvec-ir: task arithmetic for zero-shot re-ranking.")
    assert "Flags come before the overrides" in text and "--hydra-help" in text
    assert "outputs/<date>/<time>/: results.md" in text and "multirun/<date>/<time>/" in text  # where outputs go
    assert "dataset: beir, cranfield, cranfield_split," in text  # Hydra's list of the config groups, filled in
    assert "powered by Hydra" not in text and "== Config ==" not in text  # not Hydra's default and its config dump
    assert "Hydra's help" in command("--hydra-help").stdout  # Hydra's own help stays where Hydra puts it


def test_every_example_of_the_help_parses_and_composes():
    """Each example of --help as Hydra reads it (flags first) and, but for one that needs the user's own config
    dir, composed into a checked config (a renamed key or group fails here)."""
    from hydra import compose, initialize_config_dir
    from hydra._internal.utils import get_args_parser

    from taskvec_ir.config.composed import CONFIG_DIR, parse_config, register

    lines = [line.strip() for line in command("--help").stdout.splitlines()]
    examples = [shlex.split(line)[1:] for line in lines if line == "taskvec-ir" or line.startswith("taskvec-ir ")]
    words = {word for example in examples for word in example}
    assert {"sweep=alpha", "experiment=table_demo", "launcher=slurm", "dataset=beir", "--cfg", "--config-dir"} <= words
    register()
    for example in examples:
        parsed = get_args_parser().parse_args(example)  # argparse exits on an unrecognized argument
        if parsed.config_dir is None:
            with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
                parse_config(compose("config", overrides=parsed.overrides))


def test_version_is_taskvec_irs_own():
    import platform
    from importlib.metadata import version

    import hydra

    shown = command("--version")
    assert shown.returncode == 0
    expected = f"taskvec-ir {version('taskvec-ir')} (Hydra {hydra.__version__}, Python {platform.python_version()})"
    assert shown.stdout.splitlines() == [expected]


def test_a_flag_among_the_overrides_is_told_with_the_command_hydra_reads(tmp_path):
    refused = command("dataset=cranfield", "--config-dir", str(tmp_path), "alpha.value=0.25", "--cfg", "job")
    assert refused.returncode == 1 and "unrecognized arguments" not in refused.stderr
    prefix = "taskvec-ir: flags go before the overrides (key=value); run: "
    (line,) = refused.stderr.splitlines()
    assert line.startswith(prefix)
    suggested = shlex.split(line.removeprefix(prefix))
    assert suggested == [
        "taskvec-ir",
        "--config-dir",
        str(tmp_path),
        "--cfg",
        "job",
        "dataset=cranfield",
        "alpha.value=0.25",
    ]
    rerun = command(*suggested[1:])
    assert rerun.returncode == 0, rerun.stderr
    assert "name: cranfield" in rerun.stdout and "value: 0.25" in rerun.stdout
    unknown = command("--no-such-flag", "dataset=cranfield")  # anything else wrong: Hydra's own message
    assert unknown.returncode == 2 and "unrecognized arguments: --no-such-flag" in unknown.stderr


@pytest.fixture(scope="module")
def cranfield_run(tmp_path_factory, triple, mirror_dir):
    out = tmp_path_factory.mktemp("run")
    result = taskvec_ir(
        out,
        "dataset=cranfield",
        "retriever.top_k=20",
        "alpha.value=0.7",
        "lam.value=0.4",
        *_model(triple),
        env={"TASKVEC_IR_MIRROR": str(mirror_dir)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_run_writes_metrics_runs_and_table(cranfield_run):
    out, result = cranfield_run
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"test", "lam", "merge", "warnings"} and set(metrics["test"]) == SYSTEMS
    assert metrics["lam"] == {"bm25": None, "ir_model": 0.4, "task_arithmetic": 0.4}  # lam.value: every system's
    # every judged Cranfield query has text and BM25 candidates: only the measures the first stage's depth limits
    # every judged Cranfield query has text and BM25 candidates; the measures 20 candidates limit are named
    assert metrics["warnings"] == {"unmoved_by_reranking": ["recall@100"], "beyond_top_k": ["map@100", "recall@100"]}
    merge = metrics["merge"]  # what the merge did to ΘT
    assert merge["setting"] == {"alphas": {"domain": 0.7}, "method": "task_arithmetic"}
    assert merge["vectors"]["domain"]["norm"] > 0 and list(merge["vectors"]["domain"]["layer_norms"]) == [
        "0",
        "1",
        "other",
    ]
    assert 0.9 < merge["changed_fraction"] < 1  # every tensor but the pooler head
    assert set(metrics["test"]["bm25"]) == {"ndcg@10", "precision@10", "ndcg@3", "map@100", "recall@100"}
    # Cranfield with gain = 5 - grade: BM25 lands where published plain BM25 does (≈0.34-0.37).
    assert 0.33 < metrics["test"]["bm25"]["ndcg@10"] < 0.40
    # Re-ranking 20 candidates cannot change which documents are in the top 20.
    recalls = {s: metrics["test"][s]["recall@100"] for s in SYSTEMS}
    assert len(set(recalls.values())) == 1
    assert metrics["test"]["task_arithmetic"] != metrics["test"]["ir_model"]
    for system in SYSTEMS:
        lines = (out / "runs" / f"test.{system}.trec").read_text().splitlines()
        assert len({line.split()[0] for line in lines}) == 225 and len(lines) <= 225 * 20
    assert "task_arithmetic" in result.stdout and "ndcg@10" in result.stdout


@pytest.mark.slow
def test_a_job_folder_explains_itself(cranfield_run):
    """results.md: the command, the settings that matter, the table of metrics.json's numbers, the depth warnings;
    app.log holds the printed table; both as the umask allows (the test's own, the command's)."""
    out, result = cranfield_run
    page = (out / "results.md").read_text()
    assert page.startswith("# cranfield test · minilm_demo · α=0.7 · λ=0.4 (BM25 weight)\n")
    assert "Command: `taskvec-ir dataset=cranfield retriever.top_k=20 alpha.value=0.7 lam.value=0.4 model." in page
    for setting in ("**dataset**: cranfield (cranfield), split test: 225 judged queries",
                    "**first stage**: BM25 (lucene, k1=0.9, b=0.4), top 20 re-ranked", "**α**: 0.7, as given",
                    "**λ (BM25 weight)**: 0.4, as given (lam.value)", "**merge**: method=task_arithmetic"):  # fmt: skip
        assert f"- {setting}" in page
    means = json.loads((out / "metrics.json").read_text())["test"]
    assert f"| TA | 0.4 | {means['task_arithmetic']['ndcg@10']:.4f} |" in page
    assert "map@100, recall@100: cut deeper than the 20 documents retrieved (retriever.top_k)." in page
    printed = result.stdout[result.stdout.index("cranfield test · ") :]
    assert printed.split("\nOutputs: ")[0].strip() in (out / "app.log").read_text()
    umask = os.umask(0)
    os.umask(umask)
    for name in ("results.md", "metrics.json", "per_query.json", "runs/test.task_arithmetic.trec"):
        assert (out / name).stat().st_mode & 0o777 == 0o666 & ~umask, name


@pytest.mark.slow
def test_a_lambda_only_rerun_imports_no_model_library(cranfield_run, triple, mirror_dir, tmp_path):
    """What a sweep's trial at a λ already scored costs: BM25, scores and merge diagnostics all come from the
    cache, so neither torch nor any model library is imported (Python's own import report says)."""
    out, _ = cranfield_run
    rerun = taskvec_ir(
        tmp_path / "rerun",
        "dataset=cranfield",
        "retriever.top_k=20",
        "alpha.value=0.7",
        "lam.value=0.9",
        *_model(triple),
        env={"TASKVEC_IR_MIRROR": str(mirror_dir), "PYTHONPROFILEIMPORTTIME": "1"},
    )
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    imported = {line.rsplit("|", 1)[1].strip() for line in rerun.stderr.splitlines() if line.startswith("import time")}
    assert "taskvec_ir.ir.evaluation" in imported
    assert not imported & {
        "torch",
        "transformers",
        "sentence_transformers",
        "taskvec_ir.models.scoring",
        "taskvec_ir.models.merging",
    }
    first, second = (json.loads((d / "metrics.json").read_text()) for d in (out, tmp_path / "rerun"))
    assert first["test"]["ir_model"] != second["test"]["ir_model"]  # fused at the new λ
    assert first["merge"] == second["merge"]


@pytest.mark.slow
def test_metrics_agree_with_the_trec_files(cranfield_run):
    import ir_datasets
    import ir_measures

    out, _ = cranfield_run
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    qrels = {}
    for row in ir_datasets.load("cranfield").qrels_iter():
        if row.relevance > 0:
            qrels.setdefault(row.query_id, {})[row.doc_id] = 5 - row.relevance
    for system in SYSTEMS:
        run = list(ir_measures.read_trec_run(str(out / "runs" / f"test.{system}.trec")))
        ndcg = ir_measures.calc_aggregate([ir_measures.nDCG @ 10], qrels, run)[ir_measures.nDCG @ 10]
        assert ndcg == pytest.approx(metrics[system]["ndcg@10"])


@pytest.mark.slow
def test_wandb_offline_run_holds_the_metrics(cranfield_run):
    out, _ = cranfield_run
    metrics = json.loads((out / "metrics.json").read_text())["test"]
    run = run_contents(out)
    assert run["exit_code"] == 0
    assert run["group"] == "" and run["job_type"] == "run"  # a single job: no group, W&B shows it alone
    assert re.fullmatch(r"run/cranfield/minilm_demo/alpha=0\.7,lam=0\.4-[0-9a-f]{6}", run["name"])
    tags = {"model:minilm_demo", "dataset:cranfield", "merge:task_arithmetic", "selection:none"}
    assert tags <= set(run["tags"])
    assert run["config"]["alpha"]["value"] == run["config"]["alpha"]["used"] == 0.7
    assert run["config"]["lam"] == {"value": 0.4, "grid": None, "used": 0.4}
    for system, values in metrics.items():
        for measure, value in values.items():
            assert run["summary"][f"test/{system}/{measure}"] == pytest.approx(value)
            assert f"test/{system}/{measure}" not in run["history"]  # no one-point charts
    assert run["summary"]["objective"] == pytest.approx(metrics["task_arithmetic"]["ndcg@10"])
    assert run["summary"]["test/per_query"]["nrows"] == 225  # one wide row per query
    merge = json.loads((out / "metrics.json").read_text())["merge"]
    assert run["summary"]["merge/domain/norm"] == pytest.approx(merge["vectors"]["domain"]["norm"])
    # Lineage: the run's inputs (its candidates and the task vector, from the cache; offline: in its config), its
    # TREC runs (referenced where they lie) and the code that ran it.
    inputs = json.loads(run["config"]["inputs"])
    assert {name: i["type"] for name, i in inputs.items()} == {
        "bm25-cranfield-test": "candidates",
        "task-vector-minilm_demo": "task_vector",
    }
    assert all(i["aliases"] == [i["metadata"]["cache_key"]] for i in inputs.values())
    (runs,) = [a for a in run["artifacts"] if a["type"] == "trec_runs"]
    assert runs["name"] == "runs-minilm_demo-cranfield-test" and set(runs["files"]) == {
        f"test.{system}.trec" for system in SYSTEMS
    }
    assert all(ref.startswith("file://") for ref in runs["files"].values()) and runs["metadata"]["reference"]["host"]
    assert set(runs["aliases"]) == {"latest", content_key(out / "runs")}
    provenance = run["config"]["provenance"]
    assert provenance["packages"]["taskvec-ir"] and provenance["packages"]["torch"]
    assert len(provenance["taskvec_ir_source"]["commit"]) == 40  # run from this checkout
    assert run["summary"]["merge/changed_fraction"] == pytest.approx(merge["changed_fraction"])


@pytest.mark.slow
def test_alpha_zero_makes_task_arithmetic_the_ir_model(tmp_path, triple, mirror_dir):
    result = taskvec_ir(
        tmp_path,
        "dataset=cranfield",
        "retriever.top_k=10",
        "alpha.value=0",
        *_model(triple),
        env={"TASKVEC_IR_MIRROR": str(mirror_dir), "WANDB_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "metrics.json").read_text())["test"]
    assert metrics["task_arithmetic"] == metrics["ir_model"]
    assert (tmp_path / "runs/test.ir_model.trec").read_text().replace("ir_model", "x") == (
        tmp_path / "runs/test.task_arithmetic.trec"
    ).read_text().replace("task_arithmetic", "x")
    assert not list(tmp_path.glob("wandb/offline-run-*"))  # WANDB_MODE=disabled wins over the config


@pytest.mark.slow
def test_adapt_task_builds_the_domain_checkpoint_and_logs_its_training(tmp_path, triple, mirror_dir):
    adapt = [
        "task=adapt",
        "model=minilm_scifact_adapted",
        f"model.ir={triple['ir']}",
        "model.domain.steps=3",
        "model.domain.batch_size=4",
        "model.domain.max_length=32",
        "model.domain.sample_size=12",
        "dataset@model.domain.dataset=cranfield",
        f"cache.dir={tmp_path / 'cache'}",
    ]
    result = taskvec_ir(tmp_path / "job", *adapt, env={"TASKVEC_IR_MIRROR": str(mirror_dir)})
    assert result.returncode == 0, result.stderr[-3000:]
    [folder] = (tmp_path / "cache" / "adapted").iterdir()
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["steps"] == 3 and provenance["documents"] == 12 and provenance["corpus"]["name"] == "cranfield"
    assert "model.domain: simcse on 12 cranfield documents, 3 steps" in result.stdout and str(folder) in result.stdout
    run = run_contents(tmp_path / "job")
    assert run["job_type"] == "adapt" and run["summary"]["adapt/domain/steps"] == 3
    assert run["name"].startswith("adapt/scifact/minilm_scifact_adapted/domain-")
    assert run["history"]["adapt/loss"] == pytest.approx(provenance["losses"][-1])
    (model,) = run["artifacts"]  # the adapted checkpoint, an output of this run: a version of one name per role
    assert model["type"] == "model" and model["name"] == "adapted-minilm_scifact_adapted-domain"
    assert set(model["aliases"]) == {"latest", folder.name}
    assert model["metadata"]["corpus"] == "cranfield" and model["metadata"]["steps"] == 3
    assert not (tmp_path / "job" / "metrics.json").exists()  # adapting evaluates nothing


@pytest.mark.slow
def test_an_exported_merge_is_a_model_artifact_of_its_run(tmp_path, triple, mirror_dir):
    result = taskvec_ir(
        tmp_path,
        "dataset=cranfield",
        "save_merged=true",
        "systems=[]",
        "alpha.value=0.3",
        *_model(triple),
        env={"TASKVEC_IR_MIRROR": str(mirror_dir)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "merged_model" / "model.safetensors").is_file()
    (model,) = [a for a in run_contents(tmp_path)["artifacts"] if a["type"] == "model"]
    assert model["name"] == "merged-minilm_demo" and set(model["aliases"]) == {"latest", model["metadata"]["cache_key"]}
    setting = {key: model["metadata"][key] for key in ("alphas", "method", "lam")}
    assert setting == {"alphas": {"domain": 0.3}, "method": "task_arithmetic", "lam": 0.3}
    assert all(ref.startswith("file://") and "/merged_model/" in ref for ref in model["files"].values())


# A MIRACL-shaped collection: MIRACL's fields (documents: title, text; queries: text; qrels of dev, its
# evaluated split), in French and Spanish; each query finds its passage through the language's stems (Lucene's
# light stemmers).
MIRACL_SHAPED = {
    "fr": {
        "docs": {
            "1#0": ("Jardin", "Le jardin fleuri de la maison est ouvert au public."),
            "1#1": ("Jardin", "Les visiteurs y viennent chaque été."),
            "2#0": ("Rivière", "La rivière traverse les montagnes enneigées du nord."),
            "3#0": ("Cuisine", "Une recette de cuisine traditionnelle avec des pommes."),
        },
        "queries": {"q1": "jardins fleuris", "q2": "rivières des montagnes", "q3": "recettes traditionnelles"},
        "qrels": {"q1": "1#0", "q2": "2#0", "q3": "3#0"},
        "terms": ["jardin", "fleuri", "rivier", "montagn", "recet"],  # FrenchLightStemmer's (Snowball: rivi)
        "stopwords": ["le", "les", "de", "la", "des", "y"],
    },
    "es": {
        "docs": {
            "1#0": ("Parque", "Los niños corren en el parque con las pelotas."),
            "2#0": ("Río", "El río cruza las montañas nevadas del norte."),
            "2#1": ("Río", "Los pescadores visitan sus orillas."),
            "3#0": ("Cocina", "Una receta de cocina tradicional con manzanas."),
        },
        "queries": {"q1": "pelota del niño", "q2": "ríos y montaña", "q3": "recetas tradicionales"},
        "qrels": {"q1": "1#0", "q2": "2#0", "q3": "3#0"},
        "terms": ["pelot", "niñ", "montañ", "recet", "tradicional"],
        "stopwords": ["los", "el", "en", "las", "del", "con"],
    },
}


def miracl_shaped(folder: Path, language: str) -> Path:
    collection = MIRACL_SHAPED[language]
    (folder / "qrels").mkdir(parents=True)
    docs = [{"_id": i, "title": title, "text": text} for i, (title, text) in collection["docs"].items()]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(doc, ensure_ascii=False) + "\n" for doc in docs))
    queries = [{"_id": i, "text": text} for i, text in collection["queries"].items()]
    (folder / "queries.jsonl").write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in queries))
    qrels = "".join(f"{q}\t{d}\t1\n" for q, d in collection["qrels"].items())
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n" + qrels)
    return folder


@pytest.mark.slow
@pytest.mark.parametrize("language", ["fr", "es"])
def test_a_miracl_shaped_collection_runs_end_to_end(tmp_path, triple, language):
    name = f"mini_miracl_{language}"
    collection = miracl_shaped(tmp_path / "collection", language)
    result = taskvec_ir(
        tmp_path / "out",
        f"dataset=miracl_{language}",  # MIRACL's config: its fields, language and splits, on a tiny copy
        f"dataset.name={name}",
        f"dataset.docs={name}",
        f"dataset.splits.dev={name}/dev",
        f"dataset.beir_path={collection}",
        f"cache.dir={tmp_path / 'cache'}",
        "retriever.top_k=3",
        *_model(triple),
        env={"WANDB_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert set(metrics["dev"]) == SYSTEMS  # MIRACL evaluates dev
    assert metrics["dev"]["bm25"]["ndcg@10"] == 1.0  # each relevant passage found first, by the language's stems
    bm25_run = (tmp_path / "out" / "runs" / "dev.bm25.trec").read_text().splitlines()
    assert {line.split()[0]: line.split()[2] for line in reversed(bm25_run)} == MIRACL_SHAPED[language]["qrels"]
    [index] = (tmp_path / "cache" / "bm25_index").glob("*/postings_docs.npy")  # the index, on disk
    index = BM25Index(index.parent, Analyzer(language))
    assert all(index.term_id(term) is not None for term in MIRACL_SHAPED[language]["terms"])
    assert all(index.term_id(word) is None for word in MIRACL_SHAPED[language]["stopwords"])


def stopword_collection(folder: Path) -> Path:
    """A BEIR folder whose test qrels judge a query of real words (1), a query of stopwords only (2: BM25 finds
    nothing) and a query the queries file lacks (3: no text)."""
    (folder / "qrels").mkdir(parents=True)
    docs = {"d1": "boundary layer flow over a flat plate", "d2": "heat transfer in supersonic flow"}
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs.items())
    )
    queries = {"1": "boundary layer plate", "2": "what is the of and"}
    (folder / "queries.jsonl").write_text("".join(json.dumps({"_id": i, "text": t}) + "\n" for i, t in queries.items()))
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n2\td2\t1\n3\td2\t1\n")
    (folder / "qrels" / "dev.tsv").write_text("query-id\tcorpus-id\tscore\n1\td1\t1\n")  # what λ is tuned on
    return folder


@pytest.mark.slow
def test_queries_that_score_zero_for_want_of_input_are_named_in_metrics_json(tmp_path, triple):
    """No silent zeros: a query with no candidates and one without text are counted in the means as 0 (as
    trec_eval does) and named under ``warnings``; each fused system records its own λ; ir_measures names work."""
    collection = stopword_collection(tmp_path / "collection")
    result = taskvec_ir(
        tmp_path / "out",
        "dataset=beir",
        "dataset.name=stopwords",
        f"dataset.beir_path={collection}",
        f"cache.dir={tmp_path / 'cache'}",
        "systems=[bm25,ir_model,alpha_one,task_arithmetic]",
        "measures=[ndcg@10,nDCG@10,Judged@10]",
        "lam=dev_grid",
        "lam.grid=[0.0,0.5,1.0]",
        *_model(triple),
        env={"WANDB_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["warnings"] == {"no_text": ["3"], "no_candidates": ["2"]}
    log = result.stdout + result.stderr
    assert "1 of its 3 judged queries score 0 on every system (no candidates): 2" in log
    bm25 = metrics["test"]["bm25"]
    assert bm25["ndcg@10"] == bm25["nDCG@10"] == pytest.approx(1 / 3)  # query 1 found d1 first; 2 and 3 score 0
    assert bm25["Judged@10"] == pytest.approx(1 / 3)  # query 1: its one candidate, d1, is judged; 2 and 3: none
    assert (
        set(metrics["lam"]) == {"bm25", "ir_model", "alpha_one", "task_arithmetic"} and metrics["lam"]["bm25"] is None
    )
    assert all(metrics["lam"][s] in (0.0, 0.5, 1.0) for s in ("ir_model", "alpha_one", "task_arithmetic"))
    assert metrics["lam_chosen_by"] == "λ tuned on dev (lam.grid, by ndcg@10)"  # not on the test labels
    # The same queries from a run file that lists query 1 alone: query 2 is missing from it.
    (tmp_path / "run.trec").write_text("1 Q0 d1 1 2.5 mine\n")
    result = taskvec_ir(
        tmp_path / "from_run",
        "dataset=beir",
        "dataset.name=stopwords",
        f"dataset.beir_path={collection}",
        f"cache.dir={tmp_path / 'cache'}",
        "retriever=run_file",
        f"retriever.path={tmp_path / 'run.trec'}",
        "systems=[bm25]",
        *_model(triple),
        env={"WANDB_MODE": "disabled"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "from_run" / "metrics.json").read_text())
    assert metrics["warnings"] == {
        "no_text": ["3"],
        "missing_from_run_file": ["2"],
        "unmoved_by_reranking": ["recall@100"],  # cut at retriever.top_k (100): re-ranking cannot move it
    }


@pytest.mark.slow
def test_a_beir_folders_train_split_may_be_sampled_for_dev_on_the_command_line(tmp_path, triple):
    """dataset=beir with '+dataset.splits.dev={sample_of: train, ...}': the folder's train split (qrels/train.tsv)
    is sampled, and a job on dev evaluates that sample; a split the folder lacks is refused naming its splits."""
    from beir_folders import write_beir_folder

    folder = write_beir_folder(tmp_path / "mine", {"train": 10, "test": 6})
    beir = ["dataset=beir", "dataset.name=mine", f"dataset.beir_path={folder}", f"cache.dir={tmp_path / 'cache'}"]
    settings = ["split=dev", "alpha.value=0.5", "lam.value=0.3", "systems=[bm25,task_arithmetic]", *_model(triple)]
    dev = "+dataset.splits.dev={sample_of: train, fraction: 0.5, seed: 1}"
    result = taskvec_ir(tmp_path / "job", *beir, dev, *settings, env={"WANDB_MODE": "disabled"})
    assert result.returncode == 0, result.stderr[-3000:]
    judged = json.loads((tmp_path / "job" / "per_query.json").read_text())["dev"]["bm25"]["ndcg@10"]
    assert len(judged) == 5 and set(judged) < {f"q{i}" for i in range(10)}  # half of train's (the folder's q0..q9)
    wrong = dev.replace("train", "valid")
    refused = taskvec_ir(tmp_path / "refused", *beir, wrong, *settings, env={"WANDB_MODE": "disabled"})
    assert refused.returncode != 0
    assert (
        f"dataset.splits.dev.sample_of: 'valid' is not a split of mine: its folder {folder} has test, train"
        in refused.stderr
    ), refused.stderr[-2000:]


def test_every_task_a_config_accepts_has_its_runner():
    from taskvec_ir.app import task_runner
    from taskvec_ir.config.composed import Task
    from taskvec_ir.reporting.workspace import save_workspace
    from taskvec_ir.runs.adapt_task import run_adapt
    from taskvec_ir.runs.job import run_job
    from taskvec_ir.runs.table import run_table

    assert [task_runner(task) for task in Task] == [run_job, run_adapt, run_table, save_workspace]
