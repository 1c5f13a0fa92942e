"""Run files: ranked as trec_eval ranks them, cut at top_k, their errors naming the line, their identity their
content."""

import logging
from pathlib import Path

import pytest

from taskvec_ir.config.retriever import RetrieverConfig
from taskvec_ir.ir.run_files import read_run_file

QUERIES = {"q1": "first", "q2": "second", "q3": "third"}


def write_run(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.trec"
    path.write_text(text)
    return path


def test_run_file_is_ranked_by_score_as_trec_eval_ranks_it_and_cut_at_top_k(tmp_path, caplog):
    path = write_run(
        tmp_path,
        "q1 Q0 d1 1 1.5 es\n"
        "q1 Q0 d2 2 2.5 es\n"  # a higher score than rank 1's: the score decides, not the rank column
        "q1 Q0 d3 3 2.5 es\n"  # equal scores: the greater document id first
        "\n"
        "q2 q0 d9 1 -3 es\n"
        "q2 Q0 d8 2 1e-3 es\n",
    )
    with caplog.at_level(logging.WARNING):
        run = read_run_file(path, QUERIES, top_k=2)
    assert run == {"q1": {"d3": 2.5, "d2": 2.5}, "q2": {"d8": 0.001, "d9": -3.0}, "q3": {}}
    assert list(run["q1"]) == ["d3", "d2"] and list(run["q2"]) == ["d8", "d9"]
    assert "lacks 1 of the split's 3 queries (first: q3)" in caplog.text


def test_run_file_queries_outside_the_split_are_ignored_and_short_rankings_are_kept(tmp_path, caplog):
    path = write_run(tmp_path, "q1 Q0 d1 1 3 x\nq1 Q0 d2 2 2 x\nq7 Q0 d1 1 3 x\nq8 Q0 d1 1 3 x\nq2 Q0 d1 1 1 x\n")
    with caplog.at_level(logging.WARNING):
        run = read_run_file(path, {"q1": "a", "q2": "b"}, top_k=5)
    assert run == {"q1": {"d1": 3.0, "d2": 2.0}, "q2": {"d1": 1.0}}
    assert "2 of its 4 queries are not in the split (first: q7, q8): ignored" in caplog.text
    assert "2 queries have fewer than retriever.top_k=5 candidates" in caplog.text


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("q1 Q0 d2 2 1.0", "5 fields, not 6"),
        ("q1 Q0 d2 2 high es", "could not convert"),
        ("q1 Q0 d2 2 nan es", "score nan"),
        ("q1 Q0 d1 2 1.0 es", "document d1 is listed twice for query q1"),
    ],
)
def test_run_file_errors_name_the_line(tmp_path, line, problem):
    path = write_run(tmp_path, f"q1 Q0 d1 1 2.0 es\n\n{line}\n")
    with pytest.raises(ValueError, match=f"run.trec, line 3: .*{problem}"):
        read_run_file(path, QUERIES, top_k=10)


def test_run_file_settings_are_checked():
    with pytest.raises(ValueError, match="needs the run to re-rank: add retriever.path"):
        RetrieverConfig(backend="run_file")
    with pytest.raises(ValueError, match="read only by retriever=run_file"):
        RetrieverConfig(path="run.trec")
