"""Lucene's stemmers in Python, on words whose stems Lucene's own analyzers gave (scripts/LuceneTokens.java,
Lucene 9.9): each rule of the German normalization and of the German, French and Spanish light stemmers. Their
parity on whole dictionaries: test_lucene_analysis.py."""

import pytest

from taskvec_ir.ir.analyzers import Analyzer
from taskvec_ir.ir.lucene_stemmers import german_normalization

# (language, words, Lucene's tokens of them)
LUCENE = [
    (
        "de",
        "Häuser Straße Bücher Aerosol Quelle Kinder Frauen schönsten",
        "haus strass buch arosol quell kind frau schon",
    ),
    (
        "de",
        "Goethe blaue Feuer Mauer Müller schnellstes Kindern Rechts Lehrerin gelobt",
        "goth blau feu mau mull schnell kind recht lehrerin gelobt",
    ),
    (
        "fr",
        "chevaux nationalisation créatrice finissement chanteuse heureuse purificatrice rapidement l'avion Qu'il",
        "cheval national crer fini chant heureu purifi rapid avion",
    ),
    (
        "fr",
        "travaux bijoux vivement explicatrice indicateur éducatrice organisateur poète pêcheuse télévision "
        "heureusement professionnelle maladie fille grandes",
        "traval bijou vif expliqu indiqu eduqu organis poet pecheu television heureus profesion malad file grand",
    ),
    ("es", "luces niños canciones meses rápidamente pelotas", "luz niñ cancion mes rapidament pelot"),
    ("es", "ciudades veces francesas análisis mesa café ojos", "ciudad vez frances analisis mesa café ojos"),
]


@pytest.mark.parametrize(("language", "text", "tokens"), LUCENE)
def test_stems_are_lucenes(language, text, tokens):
    assert Analyzer(language)(text) == tokens.split()


@pytest.mark.parametrize(
    ("word", "normalized"),
    [
        ("goethe", "gothe"),  # "oe" -> o
        ("aerosol", "arosol"),  # "ae" -> a
        ("blaue", "blaue"),  # "ue" after a vowel stays
        ("quelle", "quelle"),  # and after q
        ("müller", "muller"),
        ("straße", "strasse"),
    ],
)
def test_german_normalization_follows_german2(word, normalized):
    assert german_normalization(word) == normalized


def test_snowball_stays_selectable():
    assert Analyzer("fr", name="snowball")("nationalisation chevaux") == ["nationalis", "cheval"]
    assert Analyzer("fr")("nationalisation chevaux") == ["national", "cheval"]
