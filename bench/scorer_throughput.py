"""Benchmark 1: re-ranking throughput of our scorers against a bare forward loop.

    .venv/bin/python bench/scorer_throughput.py [--queries 16] [--candidates 32] [--repeats 3]
        [--device cpu] [--dtype float32]

For each model family, on tiny weights and on MiniLM-sized weights, it times ``scorer.score(...)`` (all a
job pays: truncation, tokenisation, batching, bookkeeping) and a bare ``model(**batch)`` loop over the
same batches, tokenised beforehand. ratio = bare time / our time: 1.0 means we add nothing on top of the
model; the goal is ≥ 0.9. Each figure is the best of ``--repeats`` runs (the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from taskvec_ir.config.model import ScorerConfig  # noqa: E402
from taskvec_ir.models.scoring import load_scorer  # noqa: E402

from tiny_models import MINILM, WORDS, tiny_bert, tiny_llama, tiny_t5  # noqa: E402  (the tests' checkpoint builders)

MINILM_SIZE = {
    "bert": dict(hidden_size=384, num_hidden_layers=6, num_attention_heads=12, intermediate_size=1536),
    "t5": dict(d_model=384, d_kv=32, d_ff=1536, num_layers=6, num_heads=12),
    "llama": dict(
        hidden_size=384, intermediate_size=1536, num_hidden_layers=6, num_attention_heads=12, num_key_value_heads=12
    ),
}


def workload(n_queries: int, n_candidates: int, seed: int = 0):
    rng = random.Random(seed)
    docs = {f"d{i}": " ".join(rng.choices(WORDS, k=rng.randint(40, 220))) for i in range(n_queries * n_candidates // 2)}
    queries = {f"q{i}": " ".join(rng.choices(WORDS, k=rng.randint(3, 10))) for i in range(n_queries)}
    candidates = {q: {d: 0.0 for d in rng.sample(sorted(docs), n_candidates)} for q in queries}
    return queries, docs, candidates


def bare_batches(scorer, kind, queries, docs, candidates):
    """The exact model inputs ``scorer.score`` runs, tokenised ahead of time."""
    size = scorer.settings.batch_size
    if kind == "bi_encoder":
        st = scorer.module
        doc_texts = [docs[d] for d in sorted({d for ranked in candidates.values() for d in ranked})]
        texts = sorted(doc_texts, key=len, reverse=True) + [queries[q] for q in candidates]
        return [st.tokenize(texts[i : i + size]) for i in range(0, len(texts), size)]
    query_texts, doc_texts = scorer._prepare(
        {q: queries[q] for q in candidates}, {d: docs[d] for ranked in candidates.values() for d in ranked}
    )
    pairs = sorted(
        ((q, d) for q, ranked in candidates.items() for d in ranked),
        key=lambda pair: len(doc_texts[pair[1]]),
        reverse=True,
    )
    batches = []
    for start in range(0, len(pairs), size):
        qs = [query_texts[q] for q, _ in pairs[start : start + size]]
        ds = [doc_texts[d] for _, d in pairs[start : start + size]]
        if kind == "cross_encoder":
            batch = dict(
                scorer.tokenizer(
                    qs,
                    ds,
                    padding=True,
                    truncation="only_second",
                    max_length=scorer.settings.max_length,
                    return_tensors="pt",
                )
            )
        else:
            batch = dict(scorer._tokens(scorer._prompts(qs, ds)))
            if kind == "monot5":
                batch["decoder_input_ids"] = torch.zeros((len(qs), 1), dtype=torch.long)
        batches.append(batch)
    return batches


def best_time(function, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def measure(kind, folder, settings, queries, docs, candidates, repeats):
    scorer = load_scorer(kind, folder, settings)
    batches = [
        {k: v.to(scorer.module.device) for k, v in b.items() if isinstance(v, torch.Tensor)}
        for b in bare_batches(scorer, kind, queries, docs, candidates)
    ]

    @torch.inference_mode()
    def bare():
        for batch in batches:
            scorer.module(batch) if kind == "bi_encoder" else scorer.module(**batch)

    scorer.score(queries, docs, candidates)  # warm-up: first-call costs are not throughput
    bare()
    ours = best_time(lambda: scorer.score(queries, docs, candidates), repeats)
    return ours, best_time(bare, repeats)


def checkpoints(root: Path) -> dict[str, tuple[str, Path]]:
    """(kind, folder) per benchmark row."""
    cross = root / "minilm_cross"
    model = __import__("transformers").BertForSequenceClassification.from_pretrained(MINILM, num_labels=1)
    model.save_pretrained(cross)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        (cross / name).write_bytes((MINILM / name).read_bytes())
    return {
        "bi_encoder tiny": ("bi_encoder", tiny_bert(root / "bi", 0, "bi_encoder")),
        "bi_encoder MiniLM (all-MiniLM-L6-v2)": ("bi_encoder", MINILM),
        "cross_encoder tiny": ("cross_encoder", tiny_bert(root / "cross", 0, "cross_encoder")),
        "cross_encoder MiniLM": ("cross_encoder", cross),
        "monot5 tiny": ("monot5", tiny_t5(root / "t5", 0)),
        "monot5 MiniLM-sized": ("monot5", tiny_t5(root / "t5m", 0, **MINILM_SIZE["t5"])),
        "causal_lm tiny": ("causal_lm", tiny_llama(root / "llama", 0)),
        "causal_lm MiniLM-sized": ("causal_lm", tiny_llama(root / "llamam", 0, **MINILM_SIZE["llama"])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=16)
    parser.add_argument("--candidates", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    queries, docs, candidates = workload(args.queries, args.candidates)
    settings = ScorerConfig(batch_size=32, max_length=256, device=args.device, dtype=args.dtype, show_progress=False)
    print(
        f"{args.queries} queries × {args.candidates} candidates, batch 32, max_length 256, {args.device} {args.dtype}, "
        f"torch threads {torch.get_num_threads()}"
    )
    print(f"{'model':<38} {'ours s':>8} {'bare s':>8} {'ratio':>6}")
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, (kind, folder) in checkpoints(Path(tmp)).items():
            ours, bare = measure(kind, folder, settings, queries, docs, candidates, args.repeats)
            rows[name] = {"ours_s": ours, "bare_s": bare, "ratio": bare / ours}
            print(f"{name:<38} {ours:8.3f} {bare:8.3f} {bare / ours:6.2f}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
