"""Hand-built scores whose ranking is known, for the selection tests."""


def ranked_first(doc: str, docs=("r", "a", "b", "c")) -> dict[str, float]:
    """Scores that rank ``doc`` first, then the others in order."""
    others = [d for d in docs if d != doc]
    return {doc: 1.0, **{d: 0.5 - 0.1 * i for i, d in enumerate(others)}}
