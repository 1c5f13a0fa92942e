"""The ir tests' Lucene: scripts/Lucene*.java compiled once per session."""

import pytest
from lucene_reference import Lucene, find_lucene


@pytest.fixture(scope="session")
def lucene_ref(tmp_path_factory) -> Lucene:
    """Lucene and Anserini, with scripts/Lucene*.java compiled once per session (tests/lucene_reference.py)."""
    return find_lucene(tmp_path_factory.mktemp("lucene-classes"))
