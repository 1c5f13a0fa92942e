"""The stemmers of Lucene's analyzers, in Python: English (``PorterStemFilter``), German
(``GermanNormalizationFilter`` then ``GermanLightStemFilter``), French (``FrenchLightStemFilter``) and Spanish
(``SpanishLightStemFilter``). The light stemmers are Jacques Savoy's UniNE/CLEF algorithms as Lucene writes them;
no Python package has them, so each function restates its Lucene class rule by rule (Lucene 9.9). docs/first-stage.md.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

from nltk.stem.porter import PorterStemmer


def _folded(word: str, table: dict[str, str]) -> str:
    return word.translate(str.maketrans(table))


def german_normalization(word: str) -> str:
    """GermanNormalizationFilter (Snowball's German2 heuristics): ß -> ss; ä, ö, ü -> a, o, u; "ae", "oe" -> a, o;
    "ue" -> u unless after a vowel or q. Lucene's three-state machine, state by state."""
    ordinary, no_umlaut, umlaut = 0, 1, 2  # an e after an umlaut state is deleted
    out: list[str] = []
    state = ordinary
    for character in word:
        if character in "ao":
            state = umlaut
        elif character == "u":
            state = umlaut if state == ordinary else no_umlaut
        elif character == "e":
            if state == umlaut:
                state = no_umlaut
                continue  # deleted
            state = no_umlaut
        elif character in "iqy":
            state = no_umlaut
        elif character in "äöü":
            character, state = {"ä": "a", "ö": "o", "ü": "u"}[character], no_umlaut
        elif character == "ß":
            character, state = "ss", ordinary
        else:
            state = ordinary
        out.append(character)
    return "".join(out)


_GERMAN_ACCENTS = dict.fromkeys("äàáâ", "a") | dict.fromkeys("öòóô", "o") | dict.fromkeys("ïìíî", "i")
_GERMAN_ACCENTS |= dict.fromkeys("üùúû", "u")


def german_light_stem(word: str) -> str:
    """GermanLightStemmer: accents folded, then step 1 (-ern, -em/-en/-er/-es, -e, -s after a valid s-ending)
    and step 2 (-est, -er/-en, -st after a valid st-ending), each on words long enough."""
    s = _folded(word, _GERMAN_ACCENTS)
    return _german_step(_german_step(s, _GERMAN_STEP1), _GERMAN_STEP2)


# Each step removes the first ending that matches, on words longer than its length: (longer than, ending, removed).
_GERMAN_STEP1 = ((5, re.compile("ern$"), 3), (4, re.compile("e[mnrs]$"), 2), (3, re.compile("e$"), 1),
                 (3, re.compile("[bdfghklmnt]s$"), 1))  # fmt: skip
_GERMAN_STEP2 = ((5, re.compile("est$"), 3), (4, re.compile("e[rn]$"), 2), (4, re.compile("[bdfghklmnt]st$"), 2))


def _german_step(s: str, rules) -> str:
    for longer_than, ending, removed in rules:
        if len(s) > longer_than and ending.search(s):
            return s[:-removed]
    return s


_SPANISH_ACCENTS = dict.fromkeys("àáâä", "a") | dict.fromkeys("òóôö", "o") | dict.fromkeys("èéêë", "e")
_SPANISH_ACCENTS |= dict.fromkeys("ùúûü", "u") | dict.fromkeys("ìíîï", "i")


def spanish_light_stem(word: str) -> str:
    """SpanishLightStemmer: words of 5 characters or more lose their accents, a final o, a or e, and a plural
    -s (-eses -> -es, -ces -> -z, -os/-as/-es -> -o/-a/-e removed with it)."""
    if len(word) < 5:
        return word
    s = _folded(word, _SPANISH_ACCENTS)
    if s[-1] in "oae":
        return s[:-1]
    if s[-1] == "s":
        if s.endswith("eses"):
            return s[:-2]
        if s.endswith("ces"):
            return s[:-3] + "z"
        if s[-2] in "oae":
            return s[:-2]
    return s


_FRENCH_ACCENTS = dict.fromkeys("àáâ", "a") | {"ô": "o"} | dict.fromkeys("èéê", "e") | dict.fromkeys("ùû", "u")
_FRENCH_ACCENTS |= {"î": "i", "ç": "c"}


def _french_norm(s: str) -> str:
    """FrenchLightStemmer.norm: on words of more than 4 characters, accents folded and doubled letters made
    single; then -ie, and a final r, e, e and doubled letter, removed while more than 4 characters are left."""
    if len(s) > 4:
        s = _folded(s, _FRENCH_ACCENTS)
        single = [s[0]]
        for character in s[1:]:
            if not (character == single[-1] and character.isalpha()):
                single.append(character)
        s = "".join(single)
    if len(s) > 4 and s.endswith("ie"):
        s = s[:-2]
    if len(s) > 4:
        if s[-1] == "r":
            s = s[:-1]
        if s[-1] == "e":
            s = s[:-1]
        if s[-1] == "e":
            s = s[:-1]
        if s[-1] == s[-2] and s[-1].isalpha():
            s = s[:-1]
    return s


# FrenchLightStemmer's agent nouns, in its order: (words longer than, suffix, the ending it becomes).
_FRENCH_AGENT_NOUNS = (
    (11, "ficatrice", "fier"),
    (10, "ficateur", "fier"),
    (9, "catrice", "quer"),
    (8, "cateur", "quer"),
    (8, "atrice", "er"),
    (7, "ateur", "er"),
)


def french_light_stem(word: str) -> str:
    """FrenchLightStemmer: plural -x/-s removed (-aux -> -al), then the first matching derivational suffix
    rewritten, then ``_french_norm``; Lucene's rules in Lucene's order."""
    s = word
    if len(s) > 5 and s[-1] == "x":
        if s[-3] == "a" and s[-2] == "u" and s[-4] != "e":
            s = s[:-2] + "l" + s[-1]
        s = s[:-1]
    if len(s) > 3 and s[-1] == "x":
        s = s[:-1]
    if len(s) > 3 and s[-1] == "s":
        s = s[:-1]
    n = len(s)
    if n > 9 and s.endswith("issement"):  # -issement -> -ir
        return _french_norm(s[:-6][:-1] + "r")
    if n > 8 and s.endswith("issant"):  # -issant -> -ir
        return _french_norm(s[:-4][:-1] + "r")
    if n > 6 and s.endswith("ement"):
        s = s[:-4]
        if len(s) > 3 and s.endswith("ive"):
            s = s[:-1][:-1] + "f"
        return _french_norm(s)
    for longer_than, suffix, ending in _FRENCH_AGENT_NOUNS:
        if n > longer_than and s.endswith(suffix):
            return _french_norm(s[: -len(suffix)] + ending)
    if n > 6 and s.endswith("trice"):  # -trice -> -teur, and the rules go on
        s = s[:-1]
        s = s[:-3] + "eur"
    n = len(s)
    if n > 5 and s.endswith("ième"):
        return _french_norm(s[:-4])
    if n > 7 and s.endswith("teuse"):
        s = s[:-2]
        return _french_norm(s[:-1] + "r")
    if n > 6 and s.endswith("teur"):
        s = s[:-1]
        return _french_norm(s[:-1] + "r")
    if n > 5 and s.endswith("euse"):
        return _french_norm(s[:-2])
    if n > 8 and s.endswith("ère"):
        s = s[:-1]
        return _french_norm(s[:-2] + "e" + s[-1])
    if n > 7 and s.endswith("ive"):
        s = s[:-1]
        return _french_norm(s[:-1] + "f")
    if n > 4 and (s.endswith("folle") or s.endswith("molle")):
        s = s[:-2]
        return _french_norm(s[:-1] + "u")
    if n > 9 and s.endswith("nnelle"):
        return _french_norm(s[:-5])
    if n > 9 and s.endswith("nnel"):
        return _french_norm(s[:-3])
    if n > 4 and s.endswith("ète"):  # -ète -> -et, and the rules go on
        s = s[:-1]
        s = s[:-2] + "e" + s[-1]
    if len(s) > 8 and s.endswith("ique"):
        s = s[:-4]
    n = len(s)
    if n > 8 and s.endswith("esse"):
        return _french_norm(s[:-3])
    if n > 7 and s.endswith("inage"):
        return _french_norm(s[:-3])
    if n > 9 and s.endswith("isation"):
        s = s[:-7]
        if len(s) > 5 and s.endswith("ual"):
            s = s[:-2] + "e" + s[-1]
        return _french_norm(s)
    if n > 9 and s.endswith("isateur"):
        return _french_norm(s[:-7])
    if n > 8 and (s.endswith("ation") or s.endswith("ition")):
        return _french_norm(s[:-5])
    return _french_norm(s)


class Stemmer:
    """One of these stemmers with PyStemmer's ``stemWords``/``stemWord`` interface; each distinct word is stemmed
    once (they are pure Python)."""

    def __init__(self, stem: Callable[[str], str]):
        self.stemWord = lru_cache(maxsize=500_000)(stem)  # noqa: N815 (PyStemmer's name)

    def stemWords(self, words: list[str]) -> list[str]:  # noqa: N802 (PyStemmer's name)
        return [self.stemWord(word) for word in words]


def _porter() -> Callable[[str], str]:
    """Lucene's PorterStemFilter: Martin Porter's own implementation (NLTK's MARTIN_EXTENSIONS mode)."""
    return PorterStemmer(PorterStemmer.MARTIN_EXTENSIONS).stem


# The stemmer of Lucene's analyzer for each language (dataset.language).
STEMMERS: dict[str, Callable[[], Callable[[str], str]]] = {
    "en": _porter,
    "de": lambda: lambda word: german_light_stem(german_normalization(word)),
    "fr": lambda: french_light_stem,
    "es": lambda: spanish_light_stem,
}


def lucene_stemmer(language: str) -> Stemmer:
    return Stemmer(STEMMERS[language]())
