"""BM25 backends on BEIR SciFact test: effectiveness, speed and agreement of rank_bm25 and inverted_index.

Usage: .venv/bin/python bench/bm25.py

Both backends index the same Analyzer tokens (default English analyzer, k1 = 1.2, b = 0.75) and return
each query's top 100. Printed: nDCG@10 and Recall@100 (trec_eval), index build time (analysis included) and
the search time of the 300 test queries, their ratios measured in this one run, and the agreement of the two
backends' top 10s.

Runs offline like `make`: the SciFact zip is symlinked for ir_datasets from TASKVEC_IR_MIRROR (default
../shared/datasets, where it exists) into a temporary IR_DATASETS_HOME.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TOP_K = 100
REPEATS = 3  # timings are the best of this many: the machine may be shared, and the minimum is least noisy
BACKENDS = ("rank_bm25", "inverted_index")


def mirror_folder() -> str | None:
    """The mirror folder of the offline data set copies."""
    default_mirror = REPO.parent / "shared" / "datasets"
    return os.environ.get("TASKVEC_IR_MIRROR") or (str(default_mirror) if default_mirror.is_dir() else None)


def load_scifact(mirror: str | None, home: str):
    from taskvec_ir.ir import documents, irds, splits
    from taskvec_ir.runs.compose import compose

    irds.use_ir_datasets_home(home)
    dataset = compose(["dataset=scifact"]).dataset
    irds.place_offline_files(dataset, mirror)
    return dataset, documents.load_docs(dataset), splits.load_split(dataset, dataset.test_split)


def best_time(action: Callable[[], object]) -> tuple[float, object]:
    """The fastest of REPEATS calls of ``action`` in seconds, and its last result."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - start)
    return min(times), result


def top10_overlap(run_a: dict[str, dict[str, float]], run_b: dict[str, dict[str, float]]) -> float:
    """Mean share of documents two runs' top 10s have in common (over the longer list; 1 if both are empty)."""
    shares = []
    for query_id in run_a:
        top_a, top_b = set(list(run_a[query_id])[:10]), set(list(run_b[query_id])[:10])
        longer = max(len(top_a), len(top_b))
        shares.append(len(top_a & top_b) / longer if longer else 1.0)
    return statistics.mean(shares)


def identical_top10_share(run_a: dict[str, dict[str, float]], run_b: dict[str, dict[str, float]]) -> float:
    """Share of queries whose top 10 is the same list, in the same order, in both runs."""
    same = [list(run_a[q])[:10] == list(run_b[q])[:10] for q in run_a]
    return sum(same) / len(same)


def max_relative_score_difference(run_a: dict[str, dict[str, float]], run_b: dict[str, dict[str, float]]) -> float:
    """Largest |a - b| / |a| over the (query, document) pairs both runs return."""
    return max(
        (abs(score - run_b[q][doc]) / abs(score) for q in run_a for doc, score in run_a[q].items() if doc in run_b[q]),
        default=0.0,
    )


def main() -> None:
    mirror = mirror_folder()
    with tempfile.TemporaryDirectory(prefix="bench-bm25-") as home:
        dataset, docs, split = load_scifact(mirror, home)

        from taskvec_ir.ir.analyzers import Analyzer
        from taskvec_ir.ir.bm25 import BM25Retriever
        from taskvec_ir.ir.bm25_index import BM25Index, build_bm25_index
        from taskvec_ir.ir.evaluation import evaluate_run

        def build_retriever(backend: str):
            if backend == "rank_bm25":
                return BM25Retriever(docs, analyzer)
            folder = Path(tempfile.mkdtemp(dir=home))
            build_bm25_index(docs.items(), analyzer, folder / "index")
            return BM25Index(folder / "index", analyzer)

        analyzer = Analyzer(dataset.language)
        analysis_s, _ = best_time(lambda: [analyzer(text) for text in docs.values()])
        print(f"SciFact test: {len(docs)} documents, {len(split.queries)} queries, top {TOP_K}, k1=1.2 b=0.75")
        print(f"analysing the corpus (part of both builds): {analysis_s:.2f} s\n")

        figures, runs = {}, {}
        for backend in BACKENDS:
            build_s, retriever = best_time(lambda name=backend: build_retriever(name))
            search_s, runs[backend] = best_time(lambda r=retriever: r.search(split.queries, TOP_K))
            means, _ = evaluate_run(split.qrels, runs[backend], ["ndcg@10", "recall@100"])
            figures[backend] = {**means, "build_s": build_s, "search_s": search_s}

        print(f"{'backend':<15} {'nDCG@10':>8} {'R@100':>8} {'build s':>8} {'search s':>9} {'ms/query':>9}")
        for backend, row in figures.items():
            per_query_ms = 1000 * row["search_s"] / len(split.queries)
            print(
                f"{backend:<15} {row['ndcg@10']:>8.4f} {row['recall@100']:>8.4f} {row['build_s']:>8.2f} "
                f"{row['search_s']:>9.3f} {per_query_ms:>9.2f}"
            )
        slow, fast = figures["rank_bm25"], figures["inverted_index"]
        print(
            f"\nrank_bm25 / inverted_index time: build {slow['build_s'] / fast['build_s']:.2f}x, "
            f"search {slow['search_s'] / fast['search_s']:.0f}x, "
            f"build + search {(slow['build_s'] + slow['search_s']) / (fast['build_s'] + fast['search_s']):.1f}x"
        )
        run_a, run_b = runs["rank_bm25"], runs["inverted_index"]
        print(
            f"top-10 agreement (shared documents): {top10_overlap(run_a, run_b):.4f}; "
            f"identical top-10 lists: {identical_top10_share(run_a, run_b):.4f}; "
            f"max relative score difference: {max_relative_score_difference(run_a, run_b):.1e}"
        )


if __name__ == "__main__":
    main()
