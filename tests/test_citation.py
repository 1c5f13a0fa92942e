"""CITATION.cff, as GitHub's "Cite this repository" and Zenodo read it: YAML with the keys CFF 1.2.0 requires, and the
paper taskvec-ir reproduces among its references."""

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def test_the_citation_file_has_what_cff_1_2_0_requires_and_cites_the_paper():
    citation = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert citation["cff-version"] == "1.2.0"
    assert citation["message"].strip() and citation["title"].strip()  # required with authors
    assert citation["authors"] and all("name" in a or "family-names" in a for a in citation["authors"])
    assert citation["license"] == "Apache-2.0" and "Apache License" in (REPO / "LICENSE").read_text()[:200]
    (paper,) = [r for r in citation["references"] if "Task Arithmetic" in r["title"]]
    assert paper["title"] == "Investigating Task Arithmetic for Zero-Shot Information Retrieval"
    assert [a["family-names"] for a in paper["authors"]] == ["Braga", "Kasela", "Raganato", "Pasi"]
    assert paper["year"] == 2025 and paper["conference"]["name"] == "SIGIR 2025"
    assert paper["url"] == "https://arxiv.org/abs/2505.00649"
