"""Small BEIR-layout collections written by tests: a user's own folder, with or without a dev split."""

import json
from pathlib import Path

TERMS = (
    "protein gene cancer flow wing pressure boundary layer heat cell tumour enzyme plate shock wave drag lift "
    "nozzle mutation receptor turbulence vortex laminar membrane kinase therapy"
).split()


def write_beir_folder(root: Path, splits: dict[str, int], docs: int = 40) -> Path:
    """``corpus.jsonl`` (titled documents of a few content words), ``queries.jsonl`` and ``qrels/<split>.tsv``
    with ``splits[split]`` queries each; every query's relevant document holds its three words."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)

    def words(i: int, n: int) -> list[str]:
        return [TERMS[(i * 5 + j) % len(TERMS)] for j in range(n)]

    corpus = [{"_id": f"d{i}", "title": f"{words(i, 1)[0]} study", "text": " ".join(words(i, 6))} for i in range(docs)]
    (root / "corpus.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in corpus))
    queries, number = [], 0
    for split, count in splits.items():
        lines = ["query-id\tcorpus-id\tscore\n"]
        for _ in range(count):
            doc = (7 * number) % docs
            queries.append({"_id": f"q{number}", "text": " ".join(words(doc, 3))})
            lines.append(f"q{number}\td{doc}\t1\n")
            number += 1
        (root / "qrels" / f"{split}.tsv").write_text("".join(lines))
    (root / "queries.jsonl").write_text("".join(json.dumps(query) + "\n" for query in queries))
    return root
