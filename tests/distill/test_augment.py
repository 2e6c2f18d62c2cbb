"""Jitter: random shifts of up to s pixels, applied through the loop's on_batch hook."""

import pytest
import torch
from torch import nn

from netshrink.distill import DistillConfig, Jitter, distill, shift_images
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainConfig, fit


def test_each_image_is_shifted_by_at_most_s_pixels():
    images = torch.zeros(200, 1, 9, 9)
    images[:, 0, 4, 4] = 1.0
    out = shift_images(images, 2, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    where = out[:, 0].flatten(1).argmax(1)
    rows, cols = where // 9, where % 9
    assert float(out.sum()) == 200.0  # the pixel stays inside: nothing lost
    assert set(rows.tolist()) == {2, 3, 4, 5, 6} and set(cols.tolist()) == {2, 3, 4, 5, 6}
    assert shift_images(images, 0) is images


def test_border_fills_with_zeros():
    images = torch.ones(50, 2, 5, 5)
    out = shift_images(images, 1, torch.Generator().manual_seed(1))
    assert float(out.min()) == 0.0 and float(out.max()) == 1.0
    assert out.sum(dim=(1, 2, 3)).min() >= 2 * 16


class _Spy(Callback):
    def __init__(self):
        self.seen = []

    def loss(self, state, inputs, targets, indices, outputs, loss):
        self.seen.append((inputs.clone(), indices.clone()))
        return loss


def test_jitter_reaches_the_loss_hooks_through_fit(digits):
    spy = _Spy()
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
    fit(model, digits, TrainConfig(iterations=3, device="cpu"), [Jitter(1), spy], progress=False)
    x = digits.train.tensors[0]
    changed = [not torch.equal(inputs, x[idx]) for inputs, idx in spy.seen]
    assert len(changed) == 3 and all(changed)


class _Noise(Callback):
    def on_batch(self, state, inputs, targets, indices):
        return inputs + 0.01, targets


def test_cached_teacher_refuses_augmented_batches(tmp_path, digits, trained_teacher):
    from .conftest import student

    with pytest.raises(NetshrinkError, match="augmentation"):
        distill(student(digits), trained_teacher, digits, DistillConfig(cache_dir=str(tmp_path)),
                TrainConfig(iterations=2, device="cpu"), callbacks=[_Noise()], progress=False)


def test_jitter_with_live_teacher_trains(digits, trained_teacher):
    from .conftest import student

    result = distill(student(digits), trained_teacher, digits, DistillConfig(jitter=1),
                     TrainConfig(iterations=5, device="cpu"), progress=False)
    assert result.cache is None and result.iterations == 5
