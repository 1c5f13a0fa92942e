import math

import pytest

from taskvec_ir.errors import UserError
from taskvec_ir.ir.evaluation import evaluate_run, format_table, save_trec_run

QRELS = {"q1": {"d1": 2, "d3": 1}, "q2": {"d9": 1}, "unjudged": {}}
RUN = {"q1": {"d3": 3.0, "d2": 2.0, "d1": 1.0}, "q3": {"d1": 1.0}}


def test_measures_match_hand_computed_values():
    means, per_query = evaluate_run(QRELS, RUN, ["ndcg@10", "precision@10", "recall@100", "map@100", "ndcg@3"])
    # q1: gains 1 at rank 1 and 2 at rank 3 -> DCG = 1/log2(2) + 2/log2(4) = 2; ideal 2/1 + 1/log2(3).
    ndcg_q1 = 2 / (2 + 1 / math.log2(3))
    assert per_query["ndcg@10"] == pytest.approx({"q1": ndcg_q1, "q2": 0.0})  # q2 has no results: 0
    assert per_query["precision@10"]["q1"] == pytest.approx(0.2)
    assert per_query["recall@100"]["q1"] == pytest.approx(1.0)
    assert per_query["map@100"]["q1"] == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert means["ndcg@10"] == pytest.approx(ndcg_q1 / 2)  # q3 (no qrels) and unjudged are not evaluated
    assert set(per_query["ndcg@3"]) == {"q1", "q2"}


def test_trec_run_is_ranked_and_complete(tmp_path):
    path = tmp_path / "runs" / "test.bm25.trec"
    save_trec_run(RUN, path, "bm25")
    lines = path.read_text().splitlines()
    assert lines[:3] == ["q1 Q0 d3 1 3.0 bm25", "q1 Q0 d2 2 2.0 bm25", "q1 Q0 d1 3 1.0 bm25"]
    assert len(lines) == 4 and not list(tmp_path.glob("runs/.*"))
    save_trec_run({"q": {"d": 0.1 + 0.2, "e": 1 / 3}}, path, "x")  # every digit that makes the float
    assert [float(line.split()[4]) for line in path.read_text().splitlines()] == [1 / 3, 0.1 + 0.2]


def test_table_has_one_row_per_system():
    table = format_table({"bm25": {"ndcg@10": 0.5}, "task_arithmetic": {"ndcg@10": 0.61234}}, ["ndcg@10"])
    assert table.splitlines()[2].split() == ["task_arithmetic", "0.6123"]


def test_ir_measures_names_and_judged_at_k():
    measures = ["nDCG@10", "ndcg@10", "P(rel=2)@10", "Judged@10", "R@100", "AP@100", "RR"]
    means, per_query = evaluate_run(QRELS, RUN, measures)
    assert list(means) == measures  # each under the name it was asked for
    assert per_query["nDCG@10"] == per_query["ndcg@10"]
    assert per_query["P(rel=2)@10"]["q1"] == pytest.approx(0.1)  # d1 alone has relevance 2
    # q1's top 10: d3 and d1 judged, d2 not -> 2/3; q2 has no results -> 0
    assert per_query["Judged@10"] == pytest.approx({"q1": 2 / 3, "q2": 0.0})
    assert per_query["RR"]["q1"] == pytest.approx(1.0) and per_query["R@100"]["q1"] == pytest.approx(1.0)


def test_judged_at_k_ranks_tied_scores_as_trec_eval_does():
    """Twenty documents tied below one unjudged leader: trec_eval breaks the tie by descending document id (its
    top 10: x, d19, ..., d11), ir_measures' own provider by ascending (x, d00, ..., d08), which gave 0.2 here."""
    tied = {f"d{i:02d}": 1.0 for i in range(20)}
    run = {"q": {"x": 2.0, **tied}}
    qrels = {"q": {"d00": 0, "d01": 0, "d15": 1, "d16": 0, "d17": 0, "d18": 0}}
    # trec_eval's order, computed here: score descending, then document id descending
    trec_top = [d for d, _ in sorted(run["q"].items(), key=lambda item: (item[1], item[0]), reverse=True)][:10]
    expected = sum(d in qrels["q"] for d in trec_top) / 10
    ascending_top = sorted(run["q"], key=lambda d: (-run["q"][d], d))[:10]
    assert expected == 0.4 and sum(d in qrels["q"] for d in ascending_top) / 10 == 0.2  # the two orders differ
    _, per_query = evaluate_run(qrels, run, ["Judged@10", "precision@10"])
    assert per_query["Judged@10"]["q"] == pytest.approx(expected)
    assert per_query["precision@10"]["q"] == pytest.approx(0.1)  # trec_eval's own measure: d15 in its top 10


def test_an_unknown_measure_names_the_key():
    with pytest.raises(UserError, match="measures: 'Foo@10'"):
        evaluate_run(QRELS, RUN, ["Foo@10"])
