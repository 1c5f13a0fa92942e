"""Measures as values: the names configs, ``metrics.json`` and W&B use, and the trec_eval measure each one is.

``ndcg@10``, ``precision@10``, ``map@100``, ``recall@100``, ``mrr``, ...; ``-l<n>`` sets the relevance level.
ir_measures' own names are measures too (``nDCG@10``, ``P@10``, ``P(rel=2)@10``, ``Judged@10``, ``R@100``,
``AP@100``, ``RR``): the name a user wrote is the name in every output.
A config names its measures before anything is computed, so they are checked here, in the config layer;
``taskvec_ir.ir.evaluation`` computes them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from taskvec_ir.errors import UserError

MEASURES = ("ndcg@10", "precision@10", "ndcg@3", "map@100", "recall@100")
# Our name -> (trec_eval's measure in ir_measures, whether @k is required (True), optional (None) or refused
# (False)). trec_eval's nDCG uses graded gains, so a relevance level does not apply to it.
TREC_MEASURES = {
    "ndcg": ("nDCG", None),
    "precision": ("P", True),
    "recall": ("R", True),
    "map": ("AP", None),
    "mrr": ("RR", False),
    "r-precision": ("Rprec", False),
    "bpref": ("Bpref", False),
    "hit_rate": ("Success", True),
}
# ir_measures' names of the measures of a set, the top k in any order: a re-ranking of k or fewer candidates, which
# keeps the set, cannot move them.
SET_MEASURES = ("P", "R", "Success", "Judged")
UNMOVED, BEYOND = "unmoved_by_reranking", "beyond_top_k"  # the kinds of ``depth_warnings``
_MEASURE = re.compile(r"^(?P<name>[a-z_-]+?)(?:@(?P<k>\d+))?(?:-l(?P<rel>\d+))?$")


def trec_measure(measure: str):
    """The ir_measures measure that ``measure`` names (our name, or ir_measures'); a UserError naming the key for
    anything else."""
    import ir_measures

    match = _MEASURE.match(measure)
    name = match and match["name"]
    if name not in TREC_MEASURES:
        found = _ir_measures_measure(measure)
        if found is None:
            raise UserError(
                f"measures: '{measure}' is not a measure taskvec-ir computes ({', '.join(TREC_MEASURES)}, with @k "
                "where it takes a cut-off and -l<n> for a relevance level, e.g. ndcg@10, precision@10-l2; or an "
                "ir_measures name, e.g. nDCG@10, P(rel=2)@10, Judged@10)"
            )
        return found
    trec_name, cutoff = TREC_MEASURES[name]
    if cutoff is True and match["k"] is None:
        raise UserError(f"measures: '{measure}' needs a cut-off (e.g. {name}@10)")
    if cutoff is False and match["k"] is not None:
        raise UserError(f"measures: '{measure}': {name} takes no cut-off in trec_eval (write {name})")
    if match["rel"] is not None and name == "ndcg":
        raise UserError(f"measures: '{measure}': ndcg uses graded gains, so it takes no relevance level")
    found = getattr(ir_measures, trec_name)
    if match["rel"] is not None:
        found = found(rel=int(match["rel"]))
    return found @ int(match["k"]) if match["k"] is not None else found


def _ir_measures_measure(measure: str):
    """The measure ir_measures parses ``measure`` as, where one of its providers computes it; else None."""
    import ir_measures

    try:
        found = ir_measures.parse_measure(measure)
    except (NameError, ValueError, SyntaxError, TypeError):
        return None
    return found if ir_measures.DefaultPipeline.supports(found) else None


def check_measures(measures: Sequence[str]) -> None:
    """Refuse a measure trec_eval does not compute, before anything is computed."""
    if not measures:
        raise UserError("measures: name at least one measure (e.g. ndcg@10)")
    for measure in measures:
        trec_measure(measure)


def depth_warnings(measures: Sequence[str], top_k: int, reranked: bool) -> dict[str, list[str]]:
    """The measures a first stage of depth ``top_k`` limits, by why (each kind only where it has one): ``UNMOVED``
    (where the top ``top_k`` are ``reranked``, a measure of a set whose cut-off is at least ``top_k``: every order
    of the same candidates gives it the same value) and ``BEYOND`` (a cut-off above ``top_k``: only ``top_k``
    documents are ranked)."""
    found: dict[str, list[str]] = {UNMOVED: [], BEYOND: []}
    for measure in measures:
        parsed = trec_measure(measure)
        cutoff = parsed.params.get("cutoff")
        if cutoff is None:
            continue
        if reranked and parsed.NAME in SET_MEASURES and cutoff >= top_k:
            found[UNMOVED].append(measure)
        if cutoff > top_k:
            found[BEYOND].append(measure)
    return {kind: names for kind, names in found.items() if names}
