"""A dataset's splits: Cranfield's test queries and mapped qrels, and the tiny BEIR collection's (tests/ir/conftest.py)
train and test splits with a seeded dev sample of train."""

import pytest

from taskvec_ir.config.dataset import SampleSplit
from taskvec_ir.ir import splits


def test_cranfield_queries_and_relevance_mapping(cranfield):
    import ir_datasets

    split = splits.load_split(cranfield, "test")
    assert len(split.queries) == 225
    assert all(split.queries.values())
    raw = {(q.query_id, q.doc_id): q.relevance for q in ir_datasets.load("cranfield").qrels_iter()}
    assert -1 in raw.values()
    mapped = {(qid, did): grade for qid, judged in split.qrels.items() for did, grade in judged.items()}
    assert mapped == {pair: 5 - grade for pair, grade in raw.items() if grade != -1}
    assert set(mapped.values()) == {1, 2, 3, 4}
    assert splits.load_queries(cranfield, "test") == split.queries


def test_missing_dev_split_lists_available_splits(cranfield):
    with pytest.raises(ValueError, match=r"dataset\.splits.*available: test"):
        splits.load_split(cranfield, "dev")


def test_dev_sample_is_a_seeded_fifth_of_train(beir_sources, tiny_dataset):
    dataset = tiny_dataset("tiny-folder", beir_sources["folder"])
    train = splits.load_split(dataset, "train")
    dev = splits.load_split(dataset, "dev")
    assert len(dev.queries) == 10
    assert set(dev.queries) <= set(train.queries)
    assert dev.qrels == {qid: train.qrels[qid] for qid in dev.queries}
    assert splits.load_split(dataset, "dev") == dev
    other_seed = splits.load_split(tiny_dataset("tiny-folder", beir_sources["folder"], seed=7), "dev")
    assert len(other_seed.queries) == 10 and set(other_seed.queries) != set(dev.queries)


def test_the_rest_of_a_sample_is_the_queries_it_leaves_out(beir_sources, tiny_dataset):
    dataset = tiny_dataset("tiny-folder", beir_sources["folder"])
    dataset.splits["held_out"] = SampleSplit(sample_of="train", fraction=0.2, seed=42, rest=True)
    train, dev, held_out = (splits.load_split(dataset, split) for split in ("train", "dev", "held_out"))
    assert len(held_out.queries) == 40 and not set(held_out.queries) & set(dev.queries)
    assert {**dev.queries, **held_out.queries} == train.queries
    assert held_out.qrels == {qid: train.qrels[qid] for qid in held_out.queries}


def test_unknown_split_is_a_clear_error(beir_sources, tiny_dataset):
    with pytest.raises(ValueError, match=r"no split 'valid' in dataset\.splits \(available: train, test, dev\)"):
        splits.load_split(tiny_dataset("tiny-folder", beir_sources["folder"]), "valid")


def test_a_folder_without_splits_gets_one_per_qrels_file(beir_sources, tiny_dataset):
    dataset = tiny_dataset("tiny-folder", beir_sources["folder"])
    dataset.splits = {}
    assert dataset.splits_in_folder
    assert splits.resolve_splits(dataset).splits == {"test": "tiny-folder/test", "train": "tiny-folder/train"}


def test_a_configured_split_may_sample_a_split_of_the_folders_qrels(tmp_path):
    """conf/dataset/beir.yaml with '+dataset.splits.dev={sample_of: train, ...}': the folder's splits (its qrels
    files) are merged under the configured one once the folder is read; before, the config is built reading no
    file. A sample of a split the folder does not have names the folder's splits."""
    from taskvec_ir.config.dataset import DatasetConfig
    from taskvec_ir.errors import UserError

    from beir_folders import write_beir_folder

    folder = write_beir_folder(tmp_path / "merged-folder", {"train": 10, "test": 6})
    dev = {"sample_of": "train", "fraction": 0.5, "seed": 1}
    dataset = DatasetConfig(name="merged-folder", docs="merged-folder", beir_path=str(folder), splits={"dev": dev})
    assert dataset.splits_in_folder and list(dataset.splits) == ["dev"]  # nothing read yet
    assert splits.resolve_splits(dataset).splits == {
        "train": "merged-folder/train", "test": "merged-folder/test", "dev": SampleSplit("train", 0.5, 1)}  # fmt: skip
    train, sample = splits.load_split(dataset, "train"), splits.load_split(dataset, "dev")
    assert set(train.queries) == {f"q{i}" for i in range(10)}  # the folder's train queries: q0..q9
    assert len(sample.queries) == 5 and set(sample.queries) < set(train.queries)
    assert sample.qrels == {qid: train.qrels[qid] for qid in sample.queries}
    # a configured split of the folder's name wins over the folder's
    given = DatasetConfig(
        name="merged-folder", docs="merged-folder", beir_path=str(folder), splits={"test": {**dev, "rest": True}}
    )
    assert splits.resolve_splits(given).splits["test"] == SampleSplit("train", 0.5, 1, rest=True)
    wrong = DatasetConfig(
        name="merged-folder", docs="merged-folder", beir_path=str(folder), splits={"dev": {**dev, "sample_of": "valid"}}
    )
    with pytest.raises(UserError) as refused:
        splits.resolve_splits(wrong)
    assert str(refused.value) == (
        f"dataset.splits.dev.sample_of: 'valid' is not a split of merged-folder: its folder {folder} has test, "
        "train (one per qrels/<split>.tsv) and dataset.splits adds dev"
    )
