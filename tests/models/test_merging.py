import pytest
import torch
from safetensors.torch import load_file

from taskvec_ir.config.checks import parse
from taskvec_ir.config.merge import AlphaConfig, MergeConfig
from taskvec_ir.config.merge_settings import MergeSetting
from taskvec_ir.config.model import ScorerConfig
from taskvec_ir.errors import UserError
from taskvec_ir.models.checkpoints import CheckpointError, CheckpointReader, align_keys, resolve_model_source
from taskvec_ir.models.merging import apply_task_vectors, random_direction, task_vector
from taskvec_ir.models.scoring import load_scorer

from tiny_models import MINILM, tiny_bert, tiny_t5, tiny_triple

# How a checkpoint key of the base/domain names each IR-model parameter, per family, written out by hand.
CHECKPOINT_KEY = {
    "bi_encoder": lambda name: "bert." + name.removeprefix("0.model."),
    "cross_encoder": lambda name: name,
    "monot5": lambda name: name,
    "causal_lm": lambda name: name,
}
SETTINGS = ScorerConfig(show_progress=False, max_length=64, max_query_length=16)


@pytest.fixture(scope="module", params=list(CHECKPOINT_KEY))
def triple(request, tmp_path_factory):
    family = request.param
    return family, tiny_triple(tmp_path_factory.mktemp(family), family)


def _load(family, folders):
    scorer = load_scorer(family, folders["ir"], SETTINGS)
    return scorer, task_vector(scorer.module, CheckpointReader(folders["base"]), CheckpointReader(folders["domain"]))


@pytest.mark.parametrize("alpha", [0.5, -0.3, 1.0])
def test_merge_matches_hand_computed_tensors(triple, alpha):
    family, folders = triple
    scorer, tau = _load(family, folders)
    base, domain = load_file(folders["base"] / "model.safetensors"), load_file(folders["domain"] / "model.safetensors")
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vectors(scorer.module, {"domain": tau}, MergeSetting((("domain", alpha),)))
    after = dict(scorer.module.named_parameters())
    heads = set(before) - set(tau)
    for name in tau:
        key = CHECKPOINT_KEY[family](name)
        expected = before[name] + alpha * (domain[key] - base[key])
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(after[name], before[name])
    for name in heads:  # parameters the base lacks (heads) are left as ΘT has them
        assert torch.equal(after[name], before[name])
    # Only task heads are left out: every shared tensor is merged.
    expected_heads = {
        "bi_encoder": {"0.model.pooler.dense.weight", "0.model.pooler.dense.bias"},
        "cross_encoder": {"classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"},
    }
    assert heads == expected_heads.get(family, set())


def test_alpha_zero_reproduces_ir_model_bit_for_bit(triple):
    family, folders = triple
    scorer, tau = _load(family, folders)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vectors(scorer.module, {"domain": tau}, MergeSetting((("domain", 0.0),)))
    for name, parameter in scorer.module.named_parameters():
        assert torch.equal(parameter, before[name]) and parameter.dtype == before[name].dtype


def test_tied_weights_are_merged_once(tmp_path):
    folders = tiny_triple(tmp_path, "monot5")
    scorer, tau = _load("monot5", folders)
    model = scorer.module
    assert model.lm_head.weight is model.shared.weight  # T5 ties them: one tensor, several names
    shared = model.shared.weight.detach().clone()
    apply_task_vectors(model, {"domain": tau}, MergeSetting((("domain", 1.0),)))
    base = load_file(folders["base"] / "model.safetensors")["shared.weight"]
    domain = load_file(folders["domain"] / "model.safetensors")["shared.weight"]
    torch.testing.assert_close(model.lm_head.weight.detach(), shared + (domain - base))


def test_align_keys_strips_wrapper_and_head_prefixes():
    aliases = {
        "0.model.embeddings.w": ["0.model.embeddings.w"],
        "0.model.encoder.layer.0.w": ["0.model.encoder.layer.0.w"],
    }
    alignment = align_keys(aliases, ["bert.embeddings.w", "bert.encoder.layer.0.w", "cls.predictions.bias"])
    assert alignment.source_for == {
        "0.model.embeddings.w": "bert.embeddings.w",
        "0.model.encoder.layer.0.w": "bert.encoder.layer.0.w",
    }
    assert alignment.ir_only == [] and alignment.source_only == ["cls.predictions.bias"]


def test_align_keys_does_not_pair_encoder_with_decoder():
    names = ["encoder.block.0.w", "decoder.block.0.w", "shared.weight"]
    alignment = align_keys({n: [n] for n in names}, names)
    assert alignment.source_for == {n: n for n in names}


def test_shape_mismatch_names_the_offending_keys(tmp_path):
    ir = tiny_bert(tmp_path / "ir", 0, "cross_encoder")
    base = tiny_bert(tmp_path / "base", 1, "mlm")
    wider = tiny_bert(tmp_path / "domain", 2, "mlm", intermediate_size=48)
    scorer = load_scorer("cross_encoder", ir, SETTINGS)
    with pytest.raises(
        CheckpointError, match=r"model\.domain .*shape differs.*intermediate\.dense\.weight \(32, 16\) vs"
    ):
        task_vector(scorer.module, CheckpointReader(base), CheckpointReader(wider))


def test_other_architecture_is_refused_with_first_keys(tmp_path):
    ir = tiny_bert(tmp_path / "ir", 0, "cross_encoder")
    t5 = tiny_t5(tmp_path / "t5", 1)
    scorer = load_scorer("cross_encoder", ir, SETTINGS)
    with pytest.raises(CheckpointError, match=r"model\.base .*not the IR model's architecture.*bert\.embeddings"):
        task_vector(scorer.module, CheckpointReader(t5), CheckpointReader(t5))


# -- several vectors, per-layer α, sparsified merges --------------------------------------------------------
from safetensors.torch import save_file  # noqa: E402

from taskvec_ir.config.merge_settings import MergeMethod  # noqa: E402
from taskvec_ir.config.tensor_groups import layer_index  # noqa: E402
from taskvec_ir.models.merging import TaskArithmetic, elect_sign_mean, sparsify, task_vector_diagnostics  # noqa: E402


def alpha_scale(alpha: dict):
    """The per-tensor factors of an ``alpha`` config group given as a mapping."""
    return parse(AlphaConfig, alpha, "alpha").scale()


TAU_1 = torch.tensor([0.1, -0.5, 0.3, -0.2, 0.6, 0.0])
TAU_2 = torch.tensor([-0.4, 0.45, 0.1, 0.3, 0.8, 0.05])


class OneTensor(torch.nn.Module):
    def __init__(self, value):
        super().__init__()
        self.w = torch.nn.Parameter(value.clone())


def merged(method: MergeMethod, alphas=(("domain", 1.0), ("other", 0.5))) -> torch.Tensor:
    module = OneTensor(torch.zeros(6))
    apply_task_vectors(module, {"domain": {"w": TAU_1}, "other": {"w": TAU_2}}, MergeSetting(alphas, method))
    return module.w.detach()


# Worked by hand with density 0.5 (3 of 6 entries kept): trim(τ1) = [0, -.5, .3, 0, .6, 0],
# trim(τ2) = [-.4, .45, 0, 0, .8, 0]; weighted by α = (1, 0.5): [0, -.5, .3, 0, .6, 0] and [-.2, .225, 0, 0, .4, 0].
HAND_COMPUTED = {
    "task_arithmetic": [0.1 - 0.2, -0.5 + 0.225, 0.3 + 0.05, -0.2 + 0.15, 0.6 + 0.4, 0.025],
    "magnitude": [-0.2, -0.5 + 0.225, 0.3, 0.0, 1.0, 0.0],
    # elected signs of the weighted sum [-.2, -.275, .3, 0, 1, 0]: entry 1 keeps only τ1's -0.5 (τ2 disagrees),
    # entry 4 averages the agreeing 0.6 and 0.4.
    "ties": [-0.2, -0.5, 0.3, 0.0, 0.5, 0.0],
}


@pytest.mark.parametrize("method", list(HAND_COMPUTED))
def test_merge_methods_match_hand_computed_values(method):
    density = 1.0 if method == "task_arithmetic" else 0.5
    torch.testing.assert_close(merged(MergeMethod(method, density)), torch.tensor(HAND_COMPUTED[method]))


def test_ties_with_one_vector_is_alpha_times_the_trimmed_vector():
    torch.testing.assert_close(
        merged(MergeMethod("ties", 0.5), (("domain", 0.8),)), 0.8 * torch.tensor([0.0, -0.5, 0.3, 0.0, 0.6, 0.0])
    )


def test_breadcrumbs_drops_the_largest_and_the_smallest_entries():
    # density 0.5 and gamma 1/6 of 6 entries: the largest entry of each τ is dropped, the next 3 kept.
    # bc(τ1) = [0, -.5, .3, -.2, 0, 0] (0.6 dropped); bc(τ2) = [-.4, .45, 0, .3, 0, 0] (0.8 dropped); α = (1, 0.5).
    method = MergeMethod("breadcrumbs", density=0.5, gamma=1 / 6)
    torch.testing.assert_close(merged(method), torch.tensor([-0.2, -0.5 + 0.225, 0.3, -0.2 + 0.15, 0.0, 0.0]))
    assert method.identity() == {"method": "breadcrumbs", "density": 0.5, "gamma": 1 / 6}


def test_dare_ties_elects_signs_over_randomly_dropped_vectors():
    # density 1 drops nothing: the sign election over α-weighted τ1 = [.1, -.5, .3, -.2, .6, 0] and
    # 0.5·τ2 = [-.2, .225, .05, .15, .4, .025]; sums [-.1, -.275, .35, -.05, 1, .025] elect [-, -, +, -, +, +];
    # the agreeing entries are averaged (a zero entry does not vote).
    torch.testing.assert_close(
        merged(MergeMethod("dare_ties", density=1.0)), torch.tensor([-0.2, -0.5, 0.175, -0.2, 0.5, 0.025])
    )
    # Below 1 it is TIES' consensus over DARE's seeded drop and rescale: the same masks as dare's.
    method = MergeMethod("dare_ties", density=0.5, seed=3)
    dropped = [
        w * sparsify(MergeMethod("dare", 0.5, seed=3), v, "w", t)
        for v, w, t in (("domain", 1.0, TAU_1), ("other", 0.5, TAU_2))
    ]
    torch.testing.assert_close(merged(method), elect_sign_mean(dropped))
    assert (method.sparsifier, method.consensus) == ("random", "sign_mean")
    assert method.identity() == {"method": "dare_ties", "density": 0.5, "seed": 3}


def test_dare_drops_and_rescales_with_a_logged_seed():
    tau = torch.linspace(0.1, 1.0, 10_000)
    method = MergeMethod("dare", density=0.3, seed=7)
    dropped = sparsify(method, "domain", "w", tau)
    kept = dropped != 0
    torch.testing.assert_close(dropped[kept], tau[kept] / 0.3)  # kept entries are rescaled by 1/density
    assert 0.28 < kept.float().mean() < 0.32 and abs(dropped.mean() / tau.mean() - 1) < 0.03
    assert torch.equal(dropped, sparsify(method, "domain", "w", tau))  # seeded: the same mask every time
    assert not torch.equal(dropped, sparsify(MergeMethod("dare", 0.3, seed=8), "domain", "w", tau))
    assert not torch.equal(dropped, sparsify(method, "other", "w", tau))  # one mask per vector and tensor
    assert method.identity() == {"method": "dare", "density": 0.3, "seed": 7}


@pytest.mark.parametrize(
    "value, message",
    [
        ({"method": "ties", "density": 0}, r"merge\.density"),
        ({"method": "ties", "density": 1.5}, r"merge\.density"),
        ({"method": "slerp"}, r"merge\.method: Invalid value 'slerp', expected one of \[task_arithmetic, "),
        ({"method": "dare", "seed": 0.5}, r"merge\.seed"),
        ({"direction": "noise"}, r"merge\.direction: Invalid value 'noise', expected one of \[task_vector, random\]"),
    ],
)
def test_bad_merge_settings_name_the_key(value, message):
    with pytest.raises(ValueError, match=message):
        parse(MergeConfig, value, "merge")


def test_the_random_direction_has_the_task_vectors_norm_per_tensor_and_its_seeds_draw(triple):
    """The random-direction null: τ's norm in every tensor, its dtype and shape, the same draw from the same seed,
    another from another seed or another vector's name."""
    family, folders = triple
    _, tau = _load(family, folders)
    null = dict(random_direction(tau.items(), seed=3, vector="domain"))
    assert null.keys() == tau.keys()
    for name, tensor in tau.items():
        assert null[name].shape == tensor.shape and null[name].dtype == tensor.dtype
        torch.testing.assert_close(null[name].norm(), tensor.norm(), rtol=1e-5, atol=1e-8)
        assert not torch.equal(null[name], tensor)
    again = dict(random_direction(reversed(list(tau.items())), seed=3, vector="domain"))  # any order, same draw
    assert all(torch.equal(again[name], null[name]) for name in tau)
    for other in (dict(random_direction(tau.items(), 4, "domain")), dict(random_direction(tau.items(), 3, "sre"))):
        assert all(not torch.equal(other[name], null[name]) for name in tau)
    zero = {"w": torch.zeros(3, 2), "step": torch.tensor([5])}  # a tensor τ leaves alone stays unmoved
    drawn = dict(random_direction(zero.items(), 0, "domain"))
    assert torch.equal(drawn["w"], zero["w"]) and "step" not in drawn  # float tensors only, as the merge


def test_the_random_direction_of_a_real_task_vector_is_uncorrelated_with_it():
    """The demo triple's τ (site-reliability fine-tune of all-MiniLM-L6-v2, 22.7M entries) and its null: cosine
    near 0 (−0.00017 at seed 0), the same norm."""
    scorer = load_scorer("bi_encoder", MINILM, SETTINGS)
    domain = resolve_model_source("package:sre_embedding_model/model_weights", "model.domain")
    tau = task_vector(scorer.module, CheckpointReader(MINILM), CheckpointReader(domain))
    null = dict(random_direction(tau.items(), seed=0, vector="domain"))
    dot = sum(float((tau[name].double() * null[name].double()).sum()) for name in tau)
    norm = sum(float(tensor.double().pow(2).sum()) for tensor in tau.values())
    assert norm > 0 and abs(dot / norm) < 0.01
    assert sum(float(tensor.double().pow(2).sum()) for tensor in null.values()) == pytest.approx(norm, rel=1e-5)


def test_layer_numbers_match_exactly():
    assert layer_index("0.model.encoder.layer.1.attention.self.query.weight") == 1
    assert layer_index("encoder.layer.10.output.dense.weight") == 10
    assert layer_index("decoder.block.11.layer.0.SelfAttention.q.weight") == 11  # T5: block, not sub-layer
    assert layer_index("model.layers.3.mlp.up_proj.weight") == 3
    assert layer_index("embeddings.word_embeddings.weight") is None
    names = [f"encoder.layer.{i}.w" for i in range(12)] + ["embeddings.w"]
    factors = alpha_scale({"rules": [{"layers": [1], "factor": 0.0}]}).factors(names)
    assert [name for name, factor in factors.items() if factor == 0.0] == ["encoder.layer.1.w"]


def test_schedule_and_patterns_give_per_tensor_factors():
    names = [f"encoder.layer.{i}.attention.w" for i in range(3)] + ["encoder.layer.2.output.w", "embeddings.w"]
    scale = alpha_scale(
        {"rules": [{"pattern": r"output", "factor": 2.0}], "schedule": {"first": 0.0, "last": 1.0}, "otherwise": 0.5}
    )
    assert list(scale.factors(names).values()) == [0.0, 0.5, 1.0, 2.0, 0.5]


@pytest.mark.parametrize(
    "alpha, message",
    [
        (
            {"rules": [{"layers": [5], "factor": 1.0}]},
            r"alpha\.rules\[0\]\.layers: \[5\] not in the IR model \(it has layers 0–1\)",
        ),
        ({"rules": [{"pattern": "nowhere", "factor": 1.0}]}, r"alpha\.rules\[0\].*matches no parameter"),
        ({"rules": [{"pattern": "(", "factor": 1.0}]}, r"alpha\.rules\[0\]\.pattern"),
        ({"rules": [{"layers": [1]}]}, r"alpha\.rules\[0\]\.factor: .*missing mandatory value: factor"),
        ({"schedule": {"first": 0.0}}, r"alpha\.schedule"),
        ({"genome": {"groups": 2, "mlp": [0.5]}}, r"alpha\.genome\.mlp: 1 factors for 2 groups"),
        ({"genome": {"groups": 0}}, r"alpha\.genome\.groups: 0 must be a positive number"),
        ({"genome": {}, "schedule": {"first": 0, "last": 1}}, r"alpha\.schedule and alpha\.genome"),
        ({"genome": {"groups": 3}}, r"alpha\.genome\.groups: 3 groups, but encoder has 2 blocks"),
    ],
)
def test_bad_rules_are_refused_before_the_weights_change(alpha, message):
    names = [f"encoder.layer.{i}.attention.w" for i in range(2)]
    with pytest.raises(UserError, match=message):
        alpha_scale(alpha).factors(names)


@pytest.fixture(scope="module")
def two_domains(tmp_path_factory):
    root = tmp_path_factory.mktemp("two")
    folders = tiny_triple(root, "cross_encoder")
    folders["other"] = tiny_bert(root / "other", 3, "mlm")
    return folders


def _two_vectors(folders):
    scorer = load_scorer("cross_encoder", folders["ir"], SETTINGS)
    base = CheckpointReader(folders["base"])
    return scorer, {
        "domain": task_vector(scorer.module, base, CheckpointReader(folders["domain"])),
        "other": task_vector(scorer.module, base, CheckpointReader(folders["other"])),
    }


@pytest.mark.parametrize(
    "method",
    [
        MergeMethod(),
        MergeMethod("ties", 0.3),
        MergeMethod("dare", 0.5, 1),
        MergeMethod("magnitude", 0.3),
        MergeMethod("dare_ties", 0.5, 1),
        MergeMethod("breadcrumbs", 0.3, gamma=0.05),
    ],
    ids=lambda m: m.name,
)
def test_a_second_vector_at_alpha_zero_changes_nothing(two_domains, method):
    one, vectors = _two_vectors(two_domains)
    two = load_scorer("cross_encoder", two_domains["ir"], SETTINGS)
    apply_task_vectors(one.module, {"domain": vectors["domain"]}, MergeSetting((("domain", 0.7),), method))
    apply_task_vectors(two.module, vectors, MergeSetting((("domain", 0.7), ("other", 0.0)), method))
    for (name, a), (_, b) in zip(one.module.named_parameters(), two.module.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_two_vectors_add_both(two_domains):
    scorer, vectors = _two_vectors(two_domains)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vectors(scorer.module, vectors, MergeSetting((("domain", 0.5), ("other", -0.25))))
    after = dict(scorer.module.named_parameters())
    assert vectors["domain"].keys() == vectors["other"].keys() and set(vectors["domain"]) < set(after)
    for name in vectors["domain"]:
        expected = before[name] + 0.5 * vectors["domain"][name] - 0.25 * vectors["other"][name]
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-6, atol=1e-7)
        assert not torch.equal(after[name], before[name])
    for name in set(after) - set(vectors["domain"]):  # the heads neither vector covers stay ΘT's
        assert torch.equal(after[name], before[name])


@pytest.mark.parametrize("mode", ["add", "remove"])
def test_layer_ablation_changes_exactly_one_layer_or_all_but_one(two_domains, mode):
    scorer, vectors = _two_vectors(two_domains)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    rules = {
        "add": {"rules": [{"layers": [1], "factor": 1.0}], "otherwise": 0.0},
        "remove": {"rules": [{"layers": [1], "factor": 0.0}]},
    }[mode]
    merge = TaskArithmetic(scorer.module, CheckpointReader(two_domains["ir"]), {"domain": vectors["domain"]})
    merge.set(MergeSetting((("domain", 0.5),), scale=alpha_scale(rules)))
    changed = {name for name, p in scorer.module.named_parameters() if not torch.equal(p, before[name])}
    in_layer_1 = {name for name in vectors["domain"] if layer_index(name) == 1}
    assert in_layer_1 and changed == (in_layer_1 if mode == "add" else set(vectors["domain"]) - in_layer_1)
    assert merge.changed_fraction() == pytest.approx(
        sum(before[n].numel() for n in changed) / sum(p.numel() for p in before.values())
    )
    merge.set(MergeSetting())  # and back to ΘT exactly
    assert all(torch.equal(p, before[n]) for n, p in scorer.module.named_parameters())


def test_diagnostics_match_hand_computed_norms_and_cosines(tmp_path):
    ir_value, base_value = torch.tensor([1.0, 2.0, 2.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    for name, value in {"ir": ir_value, "base": base_value}.items():
        (tmp_path / name).mkdir()
        save_file({"w": value}, str(tmp_path / name / "model.safetensors"))
    module = OneTensor(ir_value)
    report = task_vector_diagnostics(
        module,
        {"domain": {"w": TAU_1}, "other": {"w": TAU_2}},
        {"domain": CheckpointReader(tmp_path / "base"), "other": None},
        CheckpointReader(tmp_path / "ir"),
    )
    domain = report["vectors"]["domain"]
    assert domain["norm"] == pytest.approx(float(TAU_1.norm()))
    assert domain["norm_ratio"] == pytest.approx(float(TAU_1.norm() / 3.0))
    assert domain["layer_norms"] == {"other": pytest.approx(float(TAU_1.norm()))}
    fine_tune = ir_value - base_value
    assert domain["cosine_with_ir_fine_tune"] == pytest.approx(
        float(TAU_1 @ fine_tune / TAU_1.norm() / fine_tune.norm())
    )
    assert "cosine_with_ir_fine_tune" not in report["vectors"]["other"]  # its base is ΘT itself
    assert report["cosine"] == {"domain~other": pytest.approx(float(TAU_1 @ TAU_2 / TAU_1.norm() / TAU_2.norm()))}


def test_diagnostics_report_norms_per_layer(two_domains):
    scorer, vectors = _two_vectors(two_domains)
    report = task_vector_diagnostics(
        scorer.module, vectors, {"domain": None, "other": None}, CheckpointReader(two_domains["ir"])
    )
    layer_1 = sum(float(t.float().pow(2).sum()) for n, t in vectors["domain"].items() if layer_index(n) == 1) ** 0.5
    assert list(report["vectors"]["domain"]["layer_norms"]) == ["0", "1", "other"]
    assert report["vectors"]["domain"]["layer_norms"]["1"] == pytest.approx(layer_1)


def test_a_merge_that_fails_midway_leaves_the_ir_model_intact(two_domains):
    scorer, vectors = _two_vectors(two_domains)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}

    class Vanishing(dict):  # a streamed τ whose shards are deleted after a few tensors were read
        reads = 0

        def __getitem__(self, name):
            Vanishing.reads += 1
            if Vanishing.reads > 3:
                raise FileNotFoundError("shard-00000.safetensors")
            return super().__getitem__(name)

    merge = TaskArithmetic(scorer.module, CheckpointReader(two_domains["ir"]), {"domain": Vanishing(vectors["domain"])})
    with pytest.raises(FileNotFoundError):
        merge.set(MergeSetting((("domain", 0.5),)))
    assert all(torch.equal(p, before[n]) for n, p in scorer.module.named_parameters())
    assert merge.setting == MergeSetting() and merge.changed == {}


# -- layer-group genomes -------------------------------------------------------------------------------------
from taskvec_ir.config.tensor_groups import block_groups  # noqa: E402


@pytest.mark.parametrize("alpha", [0.5, -0.3])
def test_a_genome_equal_everywhere_is_the_single_alpha_merge_bit_for_bit(triple, alpha):
    family, folders = triple
    single, tau = _load(family, folders)
    apply_task_vectors(single.module, {"domain": tau}, MergeSetting((("domain", alpha),)))
    genome, tau = _load(family, folders)
    scale = alpha_scale({"genome": {"groups": 2, "attention": [alpha] * 2, "mlp": [alpha] * 2}, "otherwise": alpha})
    apply_task_vectors(genome.module, {"domain": tau}, MergeSetting((("domain", 1.0),), scale=scale))
    for (name, a), (_, b) in zip(single.module.named_parameters(), genome.module.named_parameters(), strict=True):
        assert torch.equal(a, b), name


def test_a_genome_moves_each_group_and_kind_by_its_own_alpha(triple):
    family, folders = triple
    scorer, tau = _load(family, folders)
    genes = {("attention", 0): 0.2, ("attention", 1): 0.9, ("mlp", 0): -0.5, ("mlp", 1): 0.4, ("other", None): 0.0}
    genome = {"groups": 2, "attention": [0.2, 0.9], "mlp": [-0.5, 0.4]}
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    apply_task_vectors(
        scorer.module,
        {"domain": tau},
        MergeSetting((("domain", 0.5),), scale=alpha_scale({"genome": genome, "otherwise": 0.0})),
    )
    after = dict(scorer.module.named_parameters())
    placed = block_groups(tau, 2)
    assert set(placed.values()) == set(genes)  # each gene moves some tensor
    for name, place in placed.items():
        expected = before[name] + 0.5 * genes[place] * tau[name]
        torch.testing.assert_close(after[name].detach(), expected, rtol=1e-6, atol=1e-7)
        assert torch.equal(after[name], before[name]) == (place == ("other", None)), name


def test_a_genome_with_more_groups_than_blocks_is_refused_before_the_weights_change(two_domains):
    scorer, vectors = _two_vectors(two_domains)
    before = {n: p.detach().clone() for n, p in scorer.module.named_parameters()}
    merge = TaskArithmetic(scorer.module, CheckpointReader(two_domains["ir"]), {"domain": vectors["domain"]})
    with pytest.raises(UserError, match=r"alpha\.genome\.groups: 3 groups, but .* has 2 blocks"):
        merge.set(MergeSetting((("domain", 0.5),), scale=alpha_scale({"genome": {"groups": 3}})))
    assert all(torch.equal(p, before[n]) for n, p in scorer.module.named_parameters())
