import pytest
import torch
import transformers

from taskvec_ir.config.checks import parse
from taskvec_ir.config.model import ScorerConfig
from taskvec_ir.models.scoring import load_scorer

from tiny_models import tiny_bert, tiny_triple

QUERIES = {"q1": "protein gene cancer", "q2": "boundary layer flow on the wing"}
DOCS = {
    "d1": "the protein is a gene in cancer cells",
    "d2": "heat flow and pressure",
    "d3": "the boundary layer of a wing in flow with pressure and heat " * 3,
}
CANDIDATES = {"q1": {"d1": 3.0, "d2": 1.0, "d3": 0.5}, "q2": {"d3": 2.0, "d2": 1.0}}


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("scoring")
    return {
        family: tiny_triple(root / family, family)["ir"]
        for family in ("bi_encoder", "cross_encoder", "monot5", "causal_lm")
    }


def _settings(**values):
    return ScorerConfig(**{"show_progress": False, "max_length": 64, "max_query_length": 16, **values})


def _reference(family, folder, query, doc):
    """The score of one pair, computed directly with transformers, without the scorer's batching."""
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    if family == "bi_encoder":
        model = transformers.AutoModel.from_pretrained(folder)
        vectors = []
        for text in (query, doc):
            encoded = tokenizer(text, return_tensors="pt")
            hidden = model(**encoded).last_hidden_state[0]
            vectors.append(torch.nn.functional.normalize(hidden.mean(0), dim=0))
        return float((vectors[0] @ vectors[1]).detach())
    if family == "cross_encoder":
        model = transformers.AutoModelForSequenceClassification.from_pretrained(folder)
        return float(model(**tokenizer(query, doc, return_tensors="pt")).logits[0, 0])
    true, false = (
        tokenizer("true", add_special_tokens=False)["input_ids"][0],
        tokenizer("false", add_special_tokens=False)["input_ids"][0],
    )
    if family == "monot5":
        model = transformers.AutoModelForSeq2SeqLM.from_pretrained(folder)
        encoded = tokenizer(f"Query: {query} Document: {doc} Relevant:", return_tensors="pt")
        logits = model(**encoded, decoder_input_ids=torch.zeros((1, 1), dtype=torch.long)).logits[0, 0]
    else:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder)
        prompt = f"Document: {doc}\nQuery: {query}\nIs the document relevant to the query? Answer yes or no.\nAnswer:"
        logits = model(**tokenizer(prompt, return_tensors="pt")).logits[0, -1]
    return float(torch.log_softmax(logits[[false, true]], dim=0)[1])


@pytest.mark.parametrize("family", ["bi_encoder", "cross_encoder", "monot5", "causal_lm"])
def test_scores_match_a_direct_forward_pass(folders, family):
    settings = _settings(batch_size=2, max_length=256)  # long enough that nothing is truncated
    scores = load_scorer(family, folders[family], settings).score(QUERIES, DOCS, CANDIDATES)
    assert {q: set(d) for q, d in scores.items()} == {q: set(d) for q, d in CANDIDATES.items()}
    for query_id, ranked in CANDIDATES.items():
        for doc_id in ranked:
            expected = _reference(family, folders[family], QUERIES[query_id], DOCS[doc_id])
            assert scores[query_id][doc_id] == pytest.approx(expected, abs=1e-4), (query_id, doc_id)


@pytest.mark.parametrize("family", ["bi_encoder", "cross_encoder", "monot5", "causal_lm"])
def test_batching_and_padding_do_not_change_scores(folders, family):
    one = load_scorer(family, folders[family], _settings(batch_size=1)).score(QUERIES, DOCS, CANDIDATES)
    many = load_scorer(family, folders[family], _settings(batch_size=5)).score(QUERIES, DOCS, CANDIDATES)
    for query_id in CANDIDATES:
        assert many[query_id] == pytest.approx(one[query_id], abs=1e-5)


@pytest.mark.parametrize("family", ["bi_encoder", "cross_encoder", "monot5", "causal_lm"])
def test_a_query_without_candidates_gets_no_scores(folders, family):
    """BM25 finds nothing for a query whose terms all occur in most documents (idf 0) or nowhere."""
    scorer = load_scorer(family, folders[family], _settings())
    first = next(iter(CANDIDATES))
    scores = scorer.score(QUERIES, DOCS, {**CANDIDATES, first: {}})
    assert scores[first] == {} and set(scores) == set(CANDIDATES)
    full = scorer.score(QUERIES, DOCS, CANDIDATES)
    for query_id in CANDIDATES.keys() - {first}:
        assert scores[query_id] == pytest.approx(full[query_id], abs=1e-5)
    assert scorer.score(QUERIES, DOCS, dict.fromkeys(CANDIDATES, {})) == dict.fromkeys(CANDIDATES, {})


def test_bi_encoder_encodes_each_distinct_document_once(folders, monkeypatch):
    scorer = load_scorer("bi_encoder", folders["bi_encoder"], _settings())
    encoded = []
    original = scorer.module.encode
    monkeypatch.setattr(scorer.module, "encode", lambda texts, **kw: encoded.extend(texts) or original(texts, **kw))
    scorer.score(QUERIES, DOCS, CANDIDATES)
    assert sorted(encoded) == sorted([*DOCS.values(), *QUERIES.values()])


def test_similarity_comes_from_the_model_config_unless_overridden(tmp_path):
    folder = tiny_bert(tmp_path / "dot", 3, "bi_encoder", dot_product=True)
    model = transformers.AutoModel.from_pretrained(folder)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    query, doc = (
        model(**tokenizer(text, return_tensors="pt")).last_hidden_state[0].mean(0).detach()
        for text in (QUERIES["q1"], DOCS["d1"])
    )
    candidates = {"q1": {"d1": 1.0}}
    dot = load_scorer("bi_encoder", folder, _settings()).score(QUERIES, DOCS, candidates)["q1"]["d1"]
    cosine = load_scorer("bi_encoder", folder, _settings(similarity="cosine")).score(QUERIES, DOCS, candidates)["q1"][
        "d1"
    ]
    assert dot == pytest.approx(float(query @ doc), abs=1e-4)
    assert cosine == pytest.approx(float(query @ doc / (query.norm() * doc.norm())), abs=1e-5)


def test_long_documents_keep_the_prompt_tail(folders):
    scorer = load_scorer("monot5", folders["monot5"], _settings(max_length=24, max_query_length=4))
    queries, docs = scorer._prepare(QUERIES, DOCS)
    prompt = scorer._prompts([queries["q2"]], [docs["d3"]])[0]
    ids = scorer.tokenizer(prompt)["input_ids"]
    assert len(ids) <= 24 and prompt.endswith("Relevant:")


def test_user_errors_are_named():
    with pytest.raises(ValueError, match="model.kind"):
        load_scorer("colbert", ".")
    with pytest.raises(ValueError, match="model.scorer.batchsize: Key 'batchsize' not in 'ScorerConfig'"):
        parse(ScorerConfig, {"batchsize": 3}, "model.scorer")
    with pytest.raises(ValueError, match="model.scorer.dtype"):
        ScorerConfig(dtype="int8")
    with pytest.raises(ValueError, match="model.scorer.similarity: 'l2'"):
        ScorerConfig(similarity="l2")
