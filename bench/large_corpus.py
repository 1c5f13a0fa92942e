"""Benchmark 7: BM25 on corpora of millions of passages, as MIRACL's (10–33M) need.

    .venv/bin/python bench/large_corpus.py [--sizes 1000000 4000000] [--work DIR] [--baseline-size 1000000]

For each corpus: the inverted index (``retriever.backend=inverted_index``) is built by streaming the corpus
from a file, then 300 queries are searched for their top 100. Printed per corpus: index time, index size on
disk, peak RSS while indexing and while searching (each step in its own process, VmHWM), and ms per query.
The goals: indexing ≤ 0.5 GB of peak RSS per million passages (so MIRACL-fr's 14M index in ≤ 8 GB), search
≤ 50 ms per query at 4M passages on one core. A last line extrapolates to MIRACL-fr. Then, for re-ranking a run
file instead, what ir_datasets' doc store costs: building it once, and reading 300 × 100 candidates' texts by id.

The corpora are synthetic and seeded (``synthetic_corpus``): terms drawn from a Zipf law over a vocabulary of
pseudo-words whose most frequent ranks are English stopwords, passage lengths log-normal around MIRACL's
(median 60 words, 10 to 250). SciFact test (5,183 abstracts, its 300 queries) is the sanity row: the real
analyzer on real text. For comparison, bm25s (the former in-memory backend: one token list per document)
indexes the first corpus with ``--baseline-size``, then saves its index and searches it memory-mapped.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
QUERIES = 300
TOP_K = 100
SEED = 7
VOCABULARY = 2_000_000  # distinct words the synthetic corpora draw from
MIRACL_FR = 14_636_953  # passages of MIRACL's French corpus (miracl/fr)
STOPWORDS = (
    "the of and to a in is that for it as was with be by on not he this are or his from at which but have an "
    "they you were her she there been their one all we can has more will would if its so no what when up out"
).split()


def pseudo_words(count: int, rng: np.random.Generator) -> list[str]:
    """``count`` distinct pronounceable words of 2 to 4 syllables (the stemmer sees word-like text)."""
    syllables = [o + v + c for o in [*"bcdfghjklmnprstvwz", "br", "st", "tr", "ch"] for v in "aeiou" for c in "nrs "]
    syllables = [syllable.strip() for syllable in syllables]
    words, seen = [], set(STOPWORDS)
    while len(words) < count:
        lengths = rng.integers(2, 5, size=count).tolist()
        for length, row in zip(lengths, rng.integers(len(syllables), size=(count, 4)).tolist(), strict=True):
            word = "".join([syllables[i] for i in row[:length]])
            if word not in seen:
                seen.add(word)
                words.append(word)
    return words[:count]


def synthetic_corpus(path: Path, passages: int, vocabulary: list[str], exponent: float = 1.07) -> None:
    """Write ``passages`` seeded passages of ``vocabulary``'s words (Zipf law over its order, log-normal lengths)
    as ``id<TAB>text`` lines."""
    rng = np.random.default_rng(SEED)
    words = np.array(vocabulary, dtype=object)
    weights = 1.0 / np.arange(1, len(words) + 1) ** exponent
    cumulative = np.cumsum(weights / weights.sum())
    with open(path, "w") as out:
        for start in range(0, passages, 100_000):
            count = min(100_000, passages - start)
            lengths = np.clip(rng.lognormal(np.log(60), 0.5, count).astype(int), 10, 250)
            terms = np.minimum(np.searchsorted(cumulative, rng.random(lengths.sum())), len(words) - 1)
            ends = np.cumsum(lengths)
            for i, (end, length) in enumerate(zip(ends, lengths, strict=True)):
                out.write(f"p{start + i}\t{' '.join(words[terms[end - length : end]])}\n")


def synthetic_queries(vocabulary_words: list[str], rng: np.random.Generator) -> dict[str, str]:
    """QUERIES queries of 2 to 6 content words, drawn with Zipf weights from ranks 100 to 200,000."""
    ranks = np.arange(100, 200_000)
    weights = 1.0 / ranks**1.07
    weights /= weights.sum()
    return {
        f"q{i}": " ".join(vocabulary_words[r] for r in rng.choice(ranks, size=rng.integers(2, 7), p=weights))
        for i in range(QUERIES)
    }


def read_corpus(path: Path):
    with open(path) as lines:
        for line in lines:
            doc_id, text = line.rstrip("\n").split("\t", 1)
            yield doc_id, text


def peak_rss_gb() -> float:
    """This process's peak resident set (VmHWM), in GB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024 / 1e9
    raise RuntimeError("no VmHWM in /proc/self/status")


# -- steps, each run in a fresh process (``--step``) so that its peak RSS is its own ------------------------
def step_index(corpus: str, index: str) -> dict:
    from taskvec_ir.ir.analyzers import Analyzer
    from taskvec_ir.ir.bm25_index import build_bm25_index

    start = time.perf_counter()
    build_bm25_index(read_corpus(Path(corpus)), Analyzer("en"), Path(index))
    return {"seconds": time.perf_counter() - start, "peak_gb": peak_rss_gb()}


def step_search(index: str, queries: str) -> dict:
    from taskvec_ir.ir.analyzers import Analyzer
    from taskvec_ir.ir.bm25_index import BM25Index

    texts = json.loads(Path(queries).read_text())
    retriever = BM25Index(Path(index), Analyzer("en"))
    start = time.perf_counter()
    run = retriever.search(texts, TOP_K)
    seconds = time.perf_counter() - start
    return {"ms_per_query": 1000 * seconds / len(texts), "peak_gb": peak_rss_gb(), "returned": _returned(run)}


def step_bm25s(corpus: str, index: str, queries: str) -> dict:
    """The former backend: bm25s indexing one token list per document, then its index saved and searched
    memory-mapped (bm25s's own save and ``load(mmap=True)``)."""
    import bm25s

    from taskvec_ir.ir.analyzers import Analyzer

    analyzer = Analyzer("en")
    start = time.perf_counter()
    retriever = bm25s.BM25(k1=1.2, b=0.75, method="robertson", dtype="float64", backend="numpy")
    retriever.index([analyzer(text) for _, text in read_corpus(Path(corpus))], show_progress=False)
    figures = {"seconds": time.perf_counter() - start, "peak_gb": peak_rss_gb()}
    retriever.save(index, show_progress=False)
    figures["size_gb"] = folder_gb(Path(index))
    texts = json.loads(Path(queries).read_text())
    loaded = bm25s.BM25.load(index, mmap=True, show_progress=False)
    start = time.perf_counter()
    for text in texts.values():
        token_ids = loaded.get_tokens_ids(analyzer(text))
        scores = loaded.get_scores_from_ids(token_ids)
        np.argpartition(scores, -TOP_K)[-TOP_K:]
    figures["ms_per_query"] = 1000 * (time.perf_counter() - start) / len(texts)
    return figures


def step_doc_store(corpus: str, work: str) -> dict:
    """What re-ranking a run file costs on this corpus: ir_datasets' doc store built once (a BEIR-layout copy
    of the corpus registered as a collection), then the texts of 300 × 100 candidates read by id."""
    from taskvec_ir.config.dataset import DatasetConfig
    from taskvec_ir.ir import documents, irds

    folder = Path(work) / "beir"
    (folder / "qrels").mkdir(parents=True)
    with open(folder / "corpus.jsonl", "w") as out:
        for doc_id, text in read_corpus(Path(corpus)):
            out.write(json.dumps({"_id": doc_id, "title": "", "text": text}) + "\n")
    (folder / "queries.jsonl").write_text('{"_id": "q", "text": "q"}\n')
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq\tp0\t1\n")
    irds.use_ir_datasets_home(Path(work) / "ir_datasets")
    dataset = DatasetConfig(name="synthetic", docs="synthetic", doc_fields=["text"], beir_path=str(folder))
    start = time.perf_counter()
    documents.doc_texts(dataset, ["p0"])  # builds the store
    figures = {"build_s": time.perf_counter() - start, "peak_gb": peak_rss_gb()}
    chosen = np.random.default_rng(SEED).choice(
        int(Path(corpus).stem.rsplit("-", 1)[1]), QUERIES * TOP_K, replace=False
    )
    candidates = [f"p{i}" for i in chosen]
    start = time.perf_counter()
    texts = documents.doc_texts(dataset, candidates)
    figures["fetch_s"] = time.perf_counter() - start
    figures["fetched"] = len(texts)
    figures["store_gb"] = folder_gb(Path(work) / "ir_datasets")
    return figures


def _returned(run: dict) -> float:
    return sum(len(ranking) for ranking in run.values()) / len(run)


def folder_gb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e9


def in_process(step: str, *args: str) -> dict:
    """Run a step in a fresh Python process; returns its JSON figures."""
    result = subprocess.run(
        [sys.executable, __file__, "--step", step, *args], capture_output=True, text=True, check=False
    )
    if result.returncode:
        raise RuntimeError(f"step {step} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def scifact_corpus(work: Path) -> tuple[Path, Path]:
    """SciFact's corpus and test queries in the benchmark's file formats, read through the project's loader."""
    from taskvec_ir.ir import documents, irds, splits
    from taskvec_ir.runs.compose import compose

    irds.use_ir_datasets_home(work / "ir_datasets")
    dataset = compose(["dataset=scifact"]).dataset
    default_mirror = REPO.parent / "shared" / "datasets"
    irds.place_offline_files(dataset, os.environ.get("TASKVEC_IR_MIRROR") or default_mirror)
    corpus, queries = work / "scifact.tsv", work / "scifact.queries.json"
    with open(corpus, "w") as out:
        for doc_id, text in documents.iter_docs(dataset):
            out.write(f"{doc_id}\t{' '.join(text.split())}\n")
    queries.write_text(json.dumps(splits.load_split(dataset, "test").queries))
    return corpus, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 4_000_000])
    parser.add_argument("--baseline-size", type=int, default=1_000_000, help="0: no bm25s row")
    parser.add_argument("--work", type=Path, help="where corpora and indexes go (default: a temporary folder)")
    parser.add_argument("--step", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.step:
        print(
            json.dumps(
                {"index": step_index, "search": step_search, "bm25s": step_bm25s, "doc_store": step_doc_store}[
                    args.step
                ](*rest)
            )
        )
        return

    with tempfile.TemporaryDirectory(prefix="bench-large-", dir=args.work) as scratch:
        work = Path(scratch)
        rows = []
        corpus, queries = scifact_corpus(work)
        rows.append(("SciFact", 5183, corpus, queries))
        words = STOPWORDS + pseudo_words(VOCABULARY - len(STOPWORDS), np.random.default_rng(SEED))
        synthetic_queries_file = work / "synthetic.queries.json"
        synthetic_queries_file.write_text(json.dumps(synthetic_queries(words, np.random.default_rng(SEED))))
        for size in args.sizes:
            corpus = work / f"synthetic-{size}.tsv"
            start = time.perf_counter()
            synthetic_corpus(corpus, size, words)
            print(f"(wrote {size:,} synthetic passages in {time.perf_counter() - start:.0f} s)", flush=True)
            rows.append((f"synthetic {size / 1e6:g}M", size, corpus, synthetic_queries_file))

        header = f"{'corpus':<16} {'passages':>10} {'index s':>8} {'size GB':>8} {'RSS index GB':>13} "
        header += f"{'GB per M':>9} {'RSS search GB':>14} {'ms/query':>9} {'hits/q':>7}"
        print(header, flush=True)
        results = {}
        for name, size, corpus, query_file in rows:
            index = work / f"index-{size}"
            built = in_process("index", str(corpus), str(index))
            searched = in_process("search", str(index), str(query_file))
            results[name] = {**built, "size_gb": folder_gb(index), "search": searched, "passages": size}
            per_million = f"{built['peak_gb'] / size * 1e6:.2f}" if size >= 1e6 else "-"
            print(
                f"{name:<16} {size:>10,} {built['seconds']:>8.1f} {folder_gb(index):>8.2f} {built['peak_gb']:>13.2f} "
                f"{per_million:>9} {searched['peak_gb']:>14.2f} "
                f"{searched['ms_per_query']:>9.1f} {searched['returned']:>7.1f}",
                flush=True,
            )
            if size != args.baseline_size:
                continue
            bm25s = in_process("bm25s", str(corpus), str(work / f"bm25s-{size}"), str(query_file))
            results[f"{name} bm25s"] = bm25s
            print(
                f"{'  bm25s (former)':<16} {size:>10,} {bm25s['seconds']:>8.1f} {bm25s['size_gb']:>8.2f} "
                f"{bm25s['peak_gb']:>13.2f} {bm25s['peak_gb'] / size * 1e6:>9.2f} {'(mmap)':>14} "
                f"{bm25s['ms_per_query']:>9.1f}",
                flush=True,
            )
            print(
                f"  ratios inverted_index / bm25s at {size:,}: peak RSS indexing "
                f"{built['peak_gb'] / bm25s['peak_gb']:.2f}x, index time {built['seconds'] / bm25s['seconds']:.2f}x, "
                f"search time {searched['ms_per_query'] / bm25s['ms_per_query']:.2f}x",
                flush=True,
            )
        print("\nre-ranking a run file instead: ir_datasets' doc store, built once, then 300 x 100 texts read by id")
        print(f"{'corpus':<16} {'build s':>8} {'peak RSS GB':>12} {'store GB':>9} {'ms per 100 texts':>17}")
        for name, size, corpus, _ in rows[1:]:
            store = in_process("doc_store", str(corpus), str(work / f"doc-store-{size}"))
            print(
                f"{name:<16} {store['build_s']:>8.1f} {store['peak_gb']:>12.2f} {store['store_gb']:>9.2f} "
                f"{1000 * store['fetch_s'] / (store['fetched'] / 100):>17.2f}",
                flush=True,
            )
        largest = max((r for r in results.values() if "search" in r), key=lambda r: r["passages"])
        per_million = largest["peak_gb"] / largest["passages"] * 1e6
        scale = MIRACL_FR / largest["passages"]
        print(
            f"\nMIRACL-fr ({MIRACL_FR / 1e6:.1f}M passages), extrapolated linearly from {largest['passages']:,}: "
            f"peak RSS indexing ≈ {per_million * MIRACL_FR / 1e6:.1f} GB (goal ≤ 8), index ≈ "
            f"{largest['size_gb'] * scale:.1f} GB on disk, ≈ {largest['seconds'] * scale / 3600:.1f} h to index on "
            f"one core"
        )


if __name__ == "__main__":
    main()
