"""Candidates from an existing TREC run file (``retriever.backend: run_file``): Elasticsearch, Anserini, Pyserini
or PISA output, ranked as trec_eval ranks it."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path

from taskvec_ir.errors import MissingFileError, UserError

log = logging.getLogger(__name__)

_SHOWN = 5  # query ids named in a warning


def read_run_file(path: str | Path, queries: Mapping[str, str], top_k: int) -> dict[str, dict[str, float]]:
    """The top ``top_k`` documents per query of a TREC run file (``qid Q0 docid rank score tag``), for the
    queries of ``queries``.

    Ranked as trec_eval ranks them: by score, descending (equal scores: document id descending); the rank
    column is not read. An unreadable line or a document listed twice for one query is an error naming its
    line. Queries of ``queries`` the run lacks get an empty ranking (trec_eval scores them 0) and queries
    not in ``queries`` are dropped, each with a warning giving the count.
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise MissingFileError(f"no run file at {path}: fix retriever.path")
    listed: dict[str, dict[str, float]] = {}
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                if len(fields) != 6:
                    raise UserError(f"{len(fields)} fields, not 6")
                query_id, doc_id, score = fields[0], fields[2], float(fields[4])
                if not math.isfinite(score):
                    raise UserError(f"score {fields[4]}")
            except ValueError as error:
                raise UserError(
                    f"{path}, line {number}: not a TREC run line ({error}; expected 'qid Q0 docid rank score tag'): "
                    f"{line.strip()[:120]!r}"
                ) from None
            ranking = listed.setdefault(query_id, {})
            if doc_id in ranking:
                raise UserError(f"{path}, line {number}: document {doc_id} is listed twice for query {query_id}")
            ranking[doc_id] = score
    unknown = sorted(set(listed) - set(queries))
    if unknown:
        log.warning(
            "Run file %s: %d of its %d queries are not in the split (first: %s): ignored",
            path, len(unknown), len(listed), ", ".join(unknown[:_SHOWN]),
        )  # fmt: skip
    missing = [query_id for query_id in queries if query_id not in listed]
    if missing:
        log.warning(
            "Run file %s lacks %d of the split's %d queries (first: %s): they get an empty ranking, which "
            "scores 0 (as in trec_eval)",
            path, len(missing), len(queries), ", ".join(missing[:_SHOWN]),
        )  # fmt: skip
    run = {}
    short = 0
    for query_id in queries:
        ranked = sorted(listed.get(query_id, {}).items(), key=lambda item: (item[1], item[0]), reverse=True)
        run[query_id] = dict(ranked[:top_k])
        short += 0 < len(ranked) < top_k
    if short:
        log.warning("Run file %s: %d queries have fewer than retriever.top_k=%d candidates", path, short, top_k)
    return run
