"""The analyzers per language and name: stopwords, stemming and the switches that leave them out. Their parity
with Lucene's own analyzers: test_lucene_analysis.py."""

import pytest

from taskvec_ir.config.schema import ANALYZERS, LANGUAGES
from taskvec_ir.ir.analyzers import ANALYSIS, Analyzer


@pytest.mark.parametrize(
    ("language", "text", "tokens"),
    [
        ("en", "The cats are running in the gardens", ["cat", "run", "garden"]),
        ("de", "Die Kinder spielen im Garten mit den Bällen", ["kind", "spiel", "gart", "ball"]),
        ("fr", "Les enfants jouent dans le jardin avec des ballons", ["enfant", "jouent", "jardin", "ballon"]),
        ("es", "Los niños corren en el parque con las pelotas", ["niñ", "corr", "parqu", "pelot"]),
    ],
)
def test_analyzer_drops_stopwords_and_stems(language, text, tokens):
    assert Analyzer(language, name="snowball")(text) == tokens
    assert Analyzer(language)(text) == tokens  # lucene: the same here


def test_analyzer_switches():
    text = "The Cats, running!"
    assert Analyzer("en", stopwords=False, stemmer=False)(text) == ["the", "cats", "running"]
    assert Analyzer("en", lowercase=False, stemmer=False)(text) == ["The", "Cats", "running"]
    assert Analyzer("en", stopwords=False)(text) == ["the", "cat", "run"]
    with pytest.raises(ValueError, match="dataset.language"):
        Analyzer("xx")
    with pytest.raises(ValueError, match="retriever.analyzer.name"):
        Analyzer("en", name="xx")


def test_every_language_a_config_accepts_has_its_analysis():
    assert set(ANALYSIS) == set(LANGUAGES)
    for language in LANGUAGES:
        for name in ANALYZERS:
            assert Analyzer(language, name=name)("Running runners ran")  # words found, stemmed or not
