"""Distilling a teacher whose outputs are embeddings (or any regression), not class logits."""

import pytest
import torch
from torch import nn

import netshrink
from netshrink.data import Examples, Splits
from netshrink.distill import DistillConfig, Relation
from netshrink.errors import NetshrinkError
from netshrink.train import TrainConfig

transformers = pytest.importorskip("transformers")
from netshrink.models import minilm  # noqa: E402


def _encoder(layers=2, seed=0):
    config = transformers.BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=layers,
                                     num_attention_heads=4, intermediate_size=64,
                                     max_position_embeddings=32, initializer_range=0.3)
    torch.manual_seed(seed)
    return minilm.SentenceEncoder(transformers.BertModel(config, add_pooling_layer=False)).eval()


def _tokens(n, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, 60, (n, 12), generator=g)
    mask = torch.ones_like(ids)
    mask[::3, 8:] = 0
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}


def _splits():
    unlabeled = [Examples(_tokens(n, s), torch.full((n,), -1)) for n, s in ((96, 0), (16, 1),
                                                                          (32, 2))]
    return Splits("tokens", *unlabeled, 1, {"input_ids": (12,), "attention_mask": (12,),
                                            "token_type_ids": (12,)})


def _layer(i):
    base = f"bert.encoder.layer.{i}.attention.self"
    return f"{base}.query", f"{base}.key", f"{base}.value"


def test_a_shallow_student_learns_the_teachers_embeddings_and_relations():
    teacher = _encoder(layers=3)
    student = minilm.student(teacher, [0, 2])
    data = _splits()
    config = DistillConfig(loss="cosine", relations=[Relation(_layer(2), _layer(1), heads=4)])
    before = netshrink.distill.callback.agreement(student, teacher, data.test.inputs)
    result = netshrink.distill(student, teacher, data, config,
                               TrainConfig(lr=3e-3, batch_size=16, iterations=30,
                                           eval_every=15, device="cpu"))
    assert result.test_cosine > before + 0.02
    assert all("val_cosine" in row for row in result.history)
    assert result.test_accuracy != result.test_accuracy  # NaN: there are no classes


def test_a_regression_teacher_of_any_module_and_embedding_mse():
    torch.manual_seed(0)
    teacher = nn.Sequential(nn.Linear(6, 32), nn.Tanh(), nn.Linear(32, 3))
    student = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    x = torch.randn(256, 6)
    data = Splits("regression", Examples(x[:192], torch.full((192,), -1)),
                  Examples(x[192:224], torch.full((32,), -1)),
                  Examples(x[224:], torch.full((32,), -1)), 1, (6,))
    with torch.no_grad():
        start = nn.functional.mse_loss(student(x[224:]), teacher(x[224:]))
    netshrink.distill(student, teacher, data, DistillConfig(loss="embedding_mse"),
                      TrainConfig(lr=1e-2, batch_size=32, epochs=20, device="cpu"))
    with torch.no_grad():
        end = nn.functional.mse_loss(student(x[224:]), teacher(x[224:]))
    assert float(end) < 0.5 * float(start)


def test_output_losses_refuse_mismatched_outputs_and_restore_best():
    teacher = nn.Linear(4, 3)
    data = Splits("r", Examples(torch.randn(8, 4), torch.full((8,), -1)),
                  Examples(torch.randn(4, 4), torch.full((4,), -1)),
                  Examples(torch.randn(4, 4), torch.full((4,), -1)), 1, (4,))
    with pytest.raises(NetshrinkError, match="must agree"):
        netshrink.distill(nn.Linear(4, 5), teacher, data, DistillConfig(loss="cosine"),
                          TrainConfig(iterations=1, device="cpu"))
    with pytest.raises(NetshrinkError, match="restore_best"):
        netshrink.distill(nn.Linear(4, 3), teacher, data, DistillConfig(loss="cosine"),
                          TrainConfig(iterations=1, device="cpu"), restore_best=True)


def test_a_relation_mask_must_be_an_input():
    teacher = _encoder()
    config = DistillConfig(loss="cosine", relations=[Relation(_layer(1), _layer(0), heads=4,
                                                              mask="padding")])
    with pytest.raises(NetshrinkError, match="padding"):
        netshrink.distill(minilm.student(teacher, [1]), teacher, _splits(), config,
                          TrainConfig(iterations=1, device="cpu"))
