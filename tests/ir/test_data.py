"""Loading through ir_datasets: Cranfield from the offline mirror, and a tiny BEIR collection built here."""

import json
import os
import zipfile
from pathlib import Path

import pytest
import yaml

from taskvec_ir.config.checks import parse
from taskvec_ir.config.composed import CONFIG_DIR
from taskvec_ir.config.dataset import DatasetConfig, SampleSplit
from taskvec_ir.ir import data


def dataset_config(name: str) -> DatasetConfig:
    return parse(DatasetConfig, yaml.safe_load((Path(CONFIG_DIR) / "dataset" / f"{name}.yaml").read_text()), "dataset")


@pytest.fixture(scope="module")
def irds_home() -> Path:
    return data.use_ir_datasets_home(os.environ["IR_DATASETS_HOME"])


@pytest.fixture(scope="module")
def cranfield(irds_home, mirror_dir) -> dict:
    dataset = dataset_config("cranfield")
    data.place_offline_files(dataset, mirror_dir)
    return dataset


def test_cranfield_counts_and_relevance_mapping(cranfield):
    import ir_datasets

    docs = data.load_docs(cranfield)
    split = data.load_split(cranfield, "test")
    assert len(docs) == 1400
    assert len(split.queries) == 225
    assert [doc_id for doc_id, text in docs.items() if not text] == ["471", "995"]  # empty in the source
    assert all(split.queries.values())

    raw = {(q.query_id, q.doc_id): q.relevance for q in ir_datasets.load("cranfield").qrels_iter()}
    assert -1 in raw.values()
    mapped = {(qid, did): grade for qid, judged in split.qrels.items() for did, grade in judged.items()}
    assert mapped == {pair: 5 - grade for pair, grade in raw.items() if grade != -1}
    assert set(mapped.values()) == {1, 2, 3, 4}


def test_doc_fields_are_joined_in_order(cranfield):
    import ir_datasets

    doc = next(ir_datasets.load("cranfield").docs_iter())
    assert data.load_docs(cranfield)[doc.doc_id] == f"{doc.title} {doc.text}"


def test_place_offline_files_is_idempotent(irds_home, mirror_dir):
    dataset = DatasetConfig(
        name="placement",
        docs="cranfield",
        splits={"test": "cranfield"},
        offline_files={"placement-test/cran.tar.gz": "cran.tar.gz"},
    )
    placed = data.place_offline_files(dataset, mirror_dir)
    assert placed == [irds_home / "placement-test" / "cran.tar.gz"]
    assert placed[0].resolve() == (mirror_dir / "cran.tar.gz").resolve()
    assert data.place_offline_files(dataset, mirror_dir) == []
    assert data.place_offline_files(dataset, None) == []


def test_missing_mirror_file_names_the_config_key(irds_home, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.offline_files"):
        data.place_offline_files(
            DatasetConfig(name="x", docs="x", splits={"test": "x"}, offline_files={"x/source.zip": "absent.zip"}),
            tmp_path,
        )


def test_home_cannot_change_after_import(irds_home, tmp_path):
    import ir_datasets  # noqa: F401  (the check only applies once it is imported)

    with pytest.raises(RuntimeError, match="IR_DATASETS_HOME"):
        data.use_ir_datasets_home(tmp_path / "elsewhere")


def test_missing_dev_split_lists_available_splits(cranfield):
    with pytest.raises(ValueError, match=r"dataset\.splits.*available: test"):
        data.load_split(cranfield, "dev")


def test_unknown_ir_datasets_id_names_the_config_key(irds_home):
    with pytest.raises(ValueError, match="dataset.docs"):
        data.load_docs(DatasetConfig(name="x", docs="no-such-collection", doc_fields=["text"], splits={"test": "x"}))


# A tiny BEIR collection: 6 documents (one without a title), 50 train queries and 3 test queries.
TRAIN_IDS = [f"q{i:02d}" for i in range(50)]


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


@pytest.fixture(scope="module")
def beir_sources(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("beir")
    folder = write_beir(root / "tiny")
    return {"folder": folder, "zip": zip_folder(folder, root / "tiny.zip")}


def tiny_config(name: str, path: Path, seed: int = 42) -> DatasetConfig:
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


@pytest.mark.parametrize("layout", ["folder", "zip"])
def test_beir_collection_registers_and_loads(irds_home, beir_sources, layout):
    import ir_datasets

    name = f"tiny-{layout}"
    dataset = tiny_config(name, beir_sources[layout])
    docs = data.load_docs(dataset)
    assert docs == {"d0": "text 0", **{f"d{i}": f"title {i} text {i}" for i in range(1, 6)}}
    test = data.load_split(dataset, "test")
    assert test.queries == {"t1": "query t1", "t2": "query t2", "t3": "query t3"}
    assert test.qrels == {"t1": {"d1": 2}, "t2": {"d2": 1}, "t3": {"d3": 0}}
    assert len(data.load_split(dataset, "train").queries) == 50
    # ir_datasets.load is the path used, and registering the same source again is a no-op
    assert len(list(ir_datasets.load(f"{name}/test").qrels_iter())) == 3
    data.register_beir_collection(name, beir_sources[layout])


def test_registering_another_source_under_a_taken_name_fails(irds_home, beir_sources):
    data.register_beir_collection("tiny-taken", beir_sources["folder"])
    with pytest.raises(ValueError, match="dataset.name"):
        data.register_beir_collection("tiny-taken", beir_sources["zip"])
    with pytest.raises(ValueError, match="dataset.name"):
        data.register_beir_collection("cranfield", beir_sources["zip"])


def test_missing_beir_path_names_the_config_key(irds_home, tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset.beir_path"):
        data.load_docs(tiny_config("tiny-missing", tmp_path / "absent"))


def test_dev_sample_is_a_seeded_fifth_of_train(irds_home, beir_sources):
    dataset = tiny_config("tiny-folder", beir_sources["folder"])
    train = data.load_split(dataset, "train")
    dev = data.load_split(dataset, "dev")
    assert len(dev.queries) == 10
    assert set(dev.queries) <= set(train.queries)
    assert dev.qrels == {qid: train.qrels[qid] for qid in dev.queries}
    assert data.load_split(dataset, "dev") == dev
    other_seed = data.load_split(tiny_config("tiny-folder", beir_sources["folder"], seed=7), "dev")
    assert len(other_seed.queries) == 10 and set(other_seed.queries) != set(dev.queries)


def test_the_rest_of_a_sample_is_the_queries_it_leaves_out(irds_home, beir_sources):
    dataset = tiny_config("tiny-folder", beir_sources["folder"])
    dataset.splits["held_out"] = SampleSplit(sample_of="train", fraction=0.2, seed=42, rest=True)
    train, dev, held_out = (data.load_split(dataset, split) for split in ("train", "dev", "held_out"))
    assert len(held_out.queries) == 40 and not set(held_out.queries) & set(dev.queries)
    assert {**dev.queries, **held_out.queries} == train.queries
    assert held_out.qrels == {qid: train.qrels[qid] for qid in held_out.queries}


def test_unknown_split_is_a_clear_error(irds_home, beir_sources):
    with pytest.raises(ValueError, match=r"no split 'valid' in dataset\.splits \(available: train, test, dev\)"):
        data.load_split(tiny_config("tiny-folder", beir_sources["folder"]), "valid")
