"""TrainConfig.bucket: batches of token inputs of similar length, every example once."""

import pytest
import torch
from torch import nn

from netshrink.data import Examples, Splits
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainConfig, batches, fit
from netshrink.train.loop import BUCKET_POOL, bucketed, token_lengths


def token_examples(n: int, longest: int = 40, seed: int = 0) -> Examples:
    """Token ids padded to `longest`, lengths 1..longest; label 1 draws ids from 25-49, label
    0 from 1-24."""
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, longest + 1, (n,), generator=g)
    labels = torch.randint(0, 2, (n,), generator=g)
    mask = (torch.arange(longest) < lengths[:, None]).long()
    ids = (torch.randint(1, 25, (n, longest), generator=g) + 24 * labels[:, None]) * mask
    return Examples({"input_ids": ids, "attention_mask": mask}, labels)


class MeanOfTokens(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(50, 16)
        self.out = nn.Linear(16, 2)

    def forward(self, input_ids, attention_mask):
        mask = attention_mask[..., None].float()
        return self.out((self.embed(input_ids) * mask).sum(1) / mask.sum(1))


def padding(batch_lengths: list[torch.Tensor]) -> int:
    """Tokens of padding when every batch is cut to its longest example."""
    return sum(int(b.max() * len(b) - b.sum()) for b in batch_lengths)


def test_every_example_comes_once_and_batches_are_sorted_within_their_pool():
    lengths = torch.randint(1, 100, (1000,), generator=torch.Generator().manual_seed(1))
    order = torch.randperm(1000, generator=torch.Generator().manual_seed(2))
    out = bucketed(order, lengths, 8, torch.Generator().manual_seed(3))
    assert sorted(torch.cat(out).tolist()) == list(range(1000))
    assert [len(b) for b in out].count(8) == 125
    pool = 8 * BUCKET_POOL  # the first pool's examples, sorted, make its batches
    first = sorted(lengths[order[:pool]].tolist())
    theirs = sorted(sorted(lengths[b].tolist()) for b in out if set(b.tolist()) <= set(
        order[:pool].tolist()))
    assert theirs == sorted(first[i:i + 8] for i in range(0, pool, 8))
    again = bucketed(order, lengths, 8, torch.Generator().manual_seed(3))
    assert all(torch.equal(a, b) for a, b in zip(out, again, strict=True))


def test_bucketed_batches_carry_far_less_padding():
    data = token_examples(800)
    g = torch.Generator().manual_seed(0)
    lengths = token_lengths(data.inputs)
    plain = [lengths[i] for _, _, i in batches(data, 16, True, g)]
    bucket = [lengths[i] for _, _, i in batches(data, 16, True, g, bucket=True)]
    assert sorted(torch.cat(bucket).tolist()) == sorted(lengths.tolist())
    assert padding(bucket) < padding(plain) / 10


class Lengths(Callback):
    def __init__(self):
        self.seen = []

    def on_batch(self, state, x, targets, indices):
        self.seen.append(x["attention_mask"].sum(1))
        return x, targets


def test_fit_with_bucket_learns_and_sees_bucketed_batches():
    splits = Splits("tokens", token_examples(640), token_examples(64, seed=1),
                    token_examples(256, seed=2), 2, (40,))
    config = TrainConfig(iterations=80, batch_size=16, lr=3e-2, device="cpu", bucket=True)
    torch.manual_seed(0)
    seen = Lengths()
    result = fit(MeanOfTokens(), splits, config, callbacks=[seen], progress=False)
    assert result.iterations == 80
    assert result.test_accuracy > 0.9
    spread = torch.tensor([float(b.max() - b.min()) for b in seen.seen])
    assert spread.mean() < 3, "within a pool of 40 batches, neighbours by length share one"


def test_bucket_refuses_inputs_without_an_attention_mask_before_any_step():
    x = torch.randn(64, 4)
    splits = Splits("plain", Examples(x, torch.zeros(64, dtype=torch.long)),
                    Examples(x, torch.zeros(64, dtype=torch.long)),
                    Examples(x, torch.zeros(64, dtype=torch.long)), 2, (4,))
    model = nn.Linear(4, 2)
    before = model.weight.detach().clone()
    with pytest.raises(NetshrinkError, match=r"bucket=True needs token inputs.*bucket=False"):
        fit(model, splits, TrainConfig(iterations=2, device="cpu", bucket=True),
            progress=False)
    assert torch.equal(model.weight, before)


def test_bucket_must_be_a_boolean():
    with pytest.raises(NetshrinkError, match="bucket"):
        TrainConfig(bucket="yes")
    assert TrainConfig.from_dict({"bucket": True}).bucket is True
