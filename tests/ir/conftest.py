"""What the ir tests share: Lucene (scripts/Lucene*.java compiled once per session), ir_datasets' home (the tests'
own, conftest.py), Cranfield from the offline mirror, and a tiny BEIR collection (6 documents, one without a title;
50 train queries and 3 test queries) as a folder and as a zip."""

import json
import os
import zipfile
from pathlib import Path

import pytest
import yaml
from lucene_reference import Lucene, find_lucene

from taskvec_ir.config.checks import parse
from taskvec_ir.config.composed import CONFIG_DIR
from taskvec_ir.config.dataset import DatasetConfig
from taskvec_ir.ir import irds

TRAIN_IDS = [f"q{i:02d}" for i in range(50)]


@pytest.fixture(scope="session")
def lucene_ref(tmp_path_factory) -> Lucene:
    """Lucene and Anserini, with scripts/Lucene*.java compiled once per session (tests/lucene_reference.py)."""
    return find_lucene(tmp_path_factory.mktemp("lucene-classes"))


@pytest.fixture(scope="session")
def irds_home() -> Path:
    return irds.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])


@pytest.fixture(scope="session")
def cranfield(irds_home, mirror_dir) -> DatasetConfig:
    values = yaml.safe_load((Path(CONFIG_DIR) / "dataset" / "cranfield.yaml").read_text())
    dataset = parse(DatasetConfig, values, "dataset")
    irds.place_offline_files(dataset, mirror_dir)
    return dataset


def write_beir(folder: Path) -> Path:
    folder.mkdir(parents=True)
    docs = [{"_id": f"d{i}", "title": "" if i == 0 else f"title {i}", "text": f"text {i}"} for i in range(6)]
    queries = [{"_id": qid, "text": f"query {qid}"} for qid in TRAIN_IDS + ["t1", "t2", "t3"]]
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in queries))
    (folder / "qrels").mkdir()
    header = "query-id\tcorpus-id\tscore\n"
    (folder / "qrels" / "train.tsv").write_text(
        header + "".join(f"{q}\td{i % 6}\t1\n" for i, q in enumerate(TRAIN_IDS))
    )
    (folder / "qrels" / "test.tsv").write_text(header + "t1\td1\t2\nt2\td2\t1\nt3\td3\t0\n")
    return folder


def zip_folder(folder: Path, archive: Path) -> Path:
    # BEIR's zips hold the files under one top folder.
    with zipfile.ZipFile(archive, "w") as out:
        for path in folder.rglob("*"):
            out.write(path, Path("tiny") / path.relative_to(folder))
    return archive


@pytest.fixture(scope="session")
def beir_sources(tmp_path_factory) -> dict[str, Path]:
    """The tiny collection, one source per layout for the whole session: a name registered in ir_datasets stays
    registered, and registering it again is a no-op only for the same source."""
    root = tmp_path_factory.mktemp("beir")
    folder = write_beir(root / "tiny")
    return {"folder": folder, "zip": zip_folder(folder, root / "tiny.zip")}


@pytest.fixture
def tiny_dataset(irds_home):
    """The config of a tiny collection: train and test from its qrels, dev a seeded fifth of train."""

    def config(name: str, path: Path, seed: int = 42) -> DatasetConfig:
        return DatasetConfig(
            name=name,
            docs=name,
            doc_fields=["title", "text"],
            query_field="text",
            splits={
                "train": f"{name}/train",
                "test": f"{name}/test",
                "dev": {"sample_of": "train", "fraction": 0.2, "seed": seed},
            },
            relevance_map=None,
            beir_path=str(path),
        )

    return config
