"""What the adaptation tests share: tiny corpora as the adapt stage receives them (doc_id -> {field: text}), fast
settings, and each objective's start (tests/models/conftest.py builds the starts)."""

from taskvec_ir.config.checks import parse
from taskvec_ir.config.model import AdaptConfig

# Short documents in the tiny word-level vocabulary (T5 and Llama), which BERT's tokenizer also reads.
DOCS = {
    doc_id: {"text": text}
    for doc_id, text in {
        "d1": "the protein gene in cancer cells",
        "d2": "flow on the wing boundary layer with heat",
        "d3": "pressure and heat flow in the boundary layer",
        "d4": "a gene is relevant to the cancer query",
        "d5": "cells with protein and gene and cancer",
        "d6": "wing pressure is the answer to the query",
        "empty": "  ",
    }.items()
}
# Documents with titles and sentences, for inverse_cloze: every title has 3 words or more, every sentence 6.
TITLED_DOCS = {
    f"t{i}": {
        "title": f"{topic} in the boundary layer",
        "text": f"the {topic} is the answer to the query. a gene is relevant to the {topic} here. "
        f"cells with protein and {topic} and heat flow.",
    }
    for i, topic in enumerate(["protein", "gene", "cancer", "wing", "pressure", "heat"])
}
CORPUS = {"docs": "toy", "doc_fields": ["text"]}
FAST = {"steps": 3, "batch_size": 3, "max_length": 32, "learning_rate": 1e-3, "save_every": 2}
# (start, objective) for each objective: "auto" wherever it picks the objective, so that is checked too.
RUNS = {
    "mlm": ("bert_mlm", "auto"),
    "span_corruption": ("t5", "auto"),
    "next_token": ("llama", "auto"),
    "simcse": ("bi_encoder", "auto"),
    "tsdae": ("bi_encoder", "tsdae"),
    "inverse_cloze": ("bi_encoder", "inverse_cloze"),
}
CORPORA = {objective: TITLED_DOCS if objective == "inverse_cloze" else DOCS for objective in RUNS}


def spec(**values) -> AdaptConfig:
    """An adapt config as a model config's ``model.domain`` gives it (typed as the schema types it)."""
    return parse(AdaptConfig, values, "adapt")


def no_docs():
    raise AssertionError("docs were read")
