"""Analyzers: text -> the tokens BM25 indexes and searches.

``lucene`` (default) gives the tokens of Lucene's analyzer for the language (``lucene_analysis``); ``snowball``
those of this project's former first stage (``\\w+`` words, bm25s's stopword lists, Snowball stemming).
docs/first-stage.md says what each does.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import Stemmer

from taskvec_ir.config.dataset import LANGUAGES
from taskvec_ir.config.retriever import ANALYZERS
from taskvec_ir.errors import UserError
from taskvec_ir.ir import lucene_analysis
from taskvec_ir.ir.lucene_stemmers import lucene_stemmer

if TYPE_CHECKING:
    from taskvec_ir.config.retriever import AnalyzerConfig

# dataset.language (config.dataset.Language) -> the snowball analyzer's bm25s stopword list and Snowball stemmer
# (PyStemmer's name); the lucene analyzer's are lucene_analysis.STOPWORDS and lucene_stemmers.STEMMERS.
SNOWBALL = {
    "en": ("STOPWORDS_EN", "english"),
    "de": ("STOPWORDS_GERMAN", "german"),
    "fr": ("STOPWORDS_FRENCH", "french"),
    "es": ("STOPWORDS_SPANISH", "spanish"),
}
_WORD = re.compile(r"\w+")
# Analyses whose tokens changed under the same settings, by (name, language): the revision joins their identity
# (an index's cache key), so that an index built before is not served. 2: Lucene's light stemmers and German
# normalization, where Snowball's stemmers were.
_REVISIONS = {("lucene", "de"): 2, ("lucene", "fr"): 2, ("lucene", "es"): 2}


class Analyzer:
    """Callable text -> tokens. ``name`` says how words are found and which stopwords and stemmer apply:
    ``lucene``, Lucene's analyzer for the language (``taskvec_ir.ir.lucene_analysis``); ``snowball``, ``\\w+``
    words, bm25s's stopword lists and Snowball stemming. Either can leave out lowercasing, stopwords or stemming."""

    def __init__(
        self,
        language: str = "en",
        lowercase: bool = True,
        stopwords: bool = True,
        stemmer: bool = True,
        name: str = "lucene",
    ):
        if language not in LANGUAGES:
            raise UserError(f"unknown language {language!r} (dataset.language); known: {', '.join(LANGUAGES)}")
        if name not in ANALYZERS:
            raise UserError(f"unknown analyzer {name!r} (retriever.analyzer.name); known: {', '.join(ANALYZERS)}")
        self.language, self.name, self.lowercase = language, name, lowercase
        self._settings = {"name": name, "lowercase": lowercase, "stopwords": stopwords, "stemmer": stemmer}
        if name == "lucene":
            self._stopwords = lucene_analysis.STOPWORDS[language] if stopwords else frozenset()
            self._stemmer = lucene_stemmer(language) if stemmer else None
        else:
            stopword_list, snowball_stemmer = SNOWBALL[language]
            self._stopwords = _stopwords(stopword_list) if stopwords else frozenset()
            self._stemmer = Stemmer.Stemmer(snowball_stemmer) if stemmer else None

    @classmethod
    def of(cls, language: str, settings: AnalyzerConfig) -> Analyzer:
        return cls(language, settings.lowercase, settings.stopwords, settings.stemmer, settings.name)

    def identity(self) -> dict:
        """What determines its tokens, given the language (a cache key part): its settings, and the analysis's
        revision where its stemmer changed."""
        revision = _REVISIONS.get((self.name, self.language)) if self._settings["stemmer"] else None
        return self._settings | ({"revision": revision} if revision else {})

    def __call__(self, text: str) -> list[str]:
        words = self.words(text)
        return self._stemmer.stemWords(words) if self._stemmer else words

    def words(self, text: str) -> list[str]:
        """The words of ``text`` that become tokens, before stemming (their count is the document's length)."""
        if self.name == "snowball":
            if self.lowercase:
                text = text.lower()
            return [word for word in _WORD.findall(text) if word not in self._stopwords]
        tokens = lucene_analysis.standard_tokens(text)
        if self.language == "en":
            tokens = [lucene_analysis.without_possessive(token) for token in tokens]
        elif self.language == "fr":
            tokens = [lucene_analysis.without_elision(token) for token in tokens]
        if self.lowercase:
            tokens = [token.lower() for token in tokens]
        return [token for token in tokens if token not in self._stopwords]

    def stem(self, word: str) -> str:
        return self._stemmer.stemWord(word) if self._stemmer else word


def _stopwords(list_name: str) -> frozenset[str]:
    import bm25s.stopwords

    return frozenset(getattr(bm25s.stopwords, list_name))
