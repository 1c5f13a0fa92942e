"""The lucene analyzer against Lucene itself (Anserini 1.7.1's fatjar, Lucene 9.9): token lists captured from
Lucene's analyzers by scripts/LuceneTokens.java, and whole dictionaries run through both."""

import gzip
import json
from importlib.resources import files

import pytest

from taskvec_ir.ir.analyzers import Analyzer

# Expected tokens: Anserini's DefaultEnglishAnalyzer on each text, printed by scripts/LuceneTokens.java (Anserini
# 1.7.1 fatjar, Java 25). The same analyzer agrees on every one of SciFact's 849,043 tokens (corpus and queries).
ENGLISH = [
    (
        "John's dogs aren't running in the U.S.A. e.g. wi-fi 3.14 1,000 user@example.com",
        "john dog aren't run u.s.a e.g wi fi 3.14 1,000 user example.com",
    ),
    (
        "O'Neil’s café, naïve Übermäßig ﬁne #hashtag x86_64 C++ B12 don't it's ___ ² © 2016",
        "o'neil café naïv übermäßig ﬁne hashtag x86_64 c b12 don't © 2016",
    ),
    ("日本語テキスト 한국어 technology us ms assembly", "日 本 語 テキスト 한국어 technolog us ms assembl"),
]


@pytest.mark.parametrize(("text", "tokens"), ENGLISH)
def test_english_analyzer_gives_lucenes_tokens(text, tokens):
    assert Analyzer("en")(text) == tokens.split()


def test_french_elision_and_lucene_stop_sets():
    assert Analyzer("fr", stemmer=False)("L'avion qu'il prend jusqu'à Paris") == ["avion", "prend", "paris"]
    assert Analyzer("de", stemmer=False)("dass Kinder") == ["dass", "kinder"]  # not in Lucene's German stop set


def dictionary(language: str) -> list[str]:
    """The words of pyspellchecker's frequency dictionary for ``language`` (a data file of the package, the test
    extra pins its version), as they are and capitalized (Lucene lowercases before it normalizes and stems)."""
    words = list(
        json.loads(gzip.decompress((files("spellchecker") / "resources" / f"{language}.json.gz").read_bytes()))
    )
    return words + [word[:1].upper() + word[1:] for word in words]


@pytest.mark.slow
@pytest.mark.parametrize(("language", "size"), [("de", 339_101), ("fr", 139_905), ("es", 86_158)])
def test_dictionaries_get_lucenes_tokens(language, size, lucene_ref):
    """Every word of a large dictionary per language, through Lucene's analyzer for the language (the one
    Anserini's -language picks) and ours: 100% of words agree (measured; 99.9% is the bound)."""
    words = dictionary(language)
    assert len(words) == 2 * size
    analyzer = Analyzer(language)
    differing = [
        (word, ours, theirs)
        for word, theirs in zip(words, lucene_ref.tokens(language, words), strict=True)
        if (ours := analyzer(word)) != theirs
    ]
    print(f"{language}: {1 - len(differing) / len(words):.6f} of {len(words)} words agree; differing: {differing[:20]}")
    assert len(differing) <= 0.001 * len(words), differing[:20]
