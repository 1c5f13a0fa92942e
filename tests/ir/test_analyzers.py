"""The analyzers per language and name: stopwords, stemming and the switches that leave them out. Their parity
with Lucene's own analyzers: test_lucene_analysis.py."""

import pytest

from taskvec_ir.config.dataset import LANGUAGES
from taskvec_ir.config.retriever import ANALYZERS
from taskvec_ir.ir.analyzers import SNOWBALL, Analyzer
from taskvec_ir.ir.lucene_analysis import STOPWORDS
from taskvec_ir.ir.lucene_stemmers import STEMMERS


@pytest.mark.parametrize(
    ("language", "text", "snowball", "lucene"),
    [
        ("en", "The cats are running in the gardens", "cat run garden", "cat run garden"),
        ("de", "Die Kinder spielen im Garten mit den Bällen", "kind spiel gart ball", "kind spiel gart ball"),
        (
            "fr",
            "Les enfants jouent dans le jardin avec des ballons",
            "enfant jouent jardin ballon",
            "enfant jouent jardin balon",  # FrenchLightStemmer makes doubled letters single
        ),
        ("es", "Los niños corren en el parque con las pelotas", "niñ corr parqu pelot", "niñ corren parqu pelot"),
    ],
)
def test_analyzer_drops_stopwords_and_stems(language, text, snowball, lucene):
    assert Analyzer(language, name="snowball")(text) == snowball.split()
    assert Analyzer(language)(text) == lucene.split()


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
    assert set(SNOWBALL) == set(STOPWORDS) == set(STEMMERS) == set(LANGUAGES)
    for language in LANGUAGES:
        for name in ANALYZERS:
            assert Analyzer(language, name=name)("Running runners ran")  # words found, stemmed or not


def test_identity_changes_only_where_the_tokens_changed():
    # An index's cache key: the settings as they were keyed before, and a revision for the analyses whose tokens
    # changed (the lucene analyzer's German, French and Spanish stemmers), so that no index built before is served.
    settings = {"name": "lucene", "lowercase": True, "stopwords": True, "stemmer": True}
    assert Analyzer("en").identity() == settings
    assert Analyzer("de", name="snowball").identity() == settings | {"name": "snowball"}
    assert Analyzer("de").identity() == settings | {"revision": 2}
    assert Analyzer("fr", stemmer=False).identity() == settings | {"stemmer": False}
