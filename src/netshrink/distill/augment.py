"""Input jitter, the augmentation Hinton et al. trained their big MNIST net with.

Each image is shifted by a random whole number of pixels in [-s, s] along each axis, the
uncovered border filled with zeros (the background of MNIST and Fashion-MNIST). `Jitter` applies
it to every training batch through the loop's `on_batch` hook; evaluation sees clean images.
It is defined for float image batches (N, C, H, W) only: token ids, a tuple or a dict of inputs
are refused with an error, as shifting them has no meaning.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from netshrink.data.inputs import Inputs, describe_batch
from netshrink.errors import NetshrinkError
from netshrink.train import Callback, TrainState


def check_images(inputs: Inputs) -> None:
    """Refuse inputs that are not a batch of float images (N, C, H, W), naming what they are."""
    if not (isinstance(inputs, torch.Tensor) and inputs.dim() == 4
            and inputs.is_floating_point()):
        raise NetshrinkError(
            f"jitter shifts float image batches shaped (N, C, H, W), but the inputs are "
            f"{describe_batch(inputs)}; set jitter=0 for these inputs"
        )


def shift_images(images: torch.Tensor, max_shift: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Shift each (C, H, W) image of the batch by its own random (dy, dx) in [-s, s]^2."""
    check_images(images)
    if max_shift == 0:
        return images
    n, c, h, w = images.shape
    s = int(max_shift)
    shifts = torch.randint(0, 2 * s + 1, (2, n), generator=generator).to(images.device)
    padded = F.pad(images, (s, s, s, s))
    rows = (shifts[0][:, None] + torch.arange(h, device=images.device))[:, None, :, None]
    cols = (shifts[1][:, None] + torch.arange(w, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(c, device=images.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


class Jitter(Callback):
    """Shift every training batch by up to `max_shift` pixels (seeded by the run's seed)."""

    def __init__(self, max_shift: int = 2):
        if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
            raise NetshrinkError(f"jitter max_shift={max_shift!r} must be an integer >= 0")
        self.max_shift = max_shift
        self.generator = torch.Generator()

    def on_fit_start(self, state: TrainState) -> None:
        self.generator.manual_seed(int(getattr(state.config, "seed", 0)) + 7919)

    def on_batch(
        self,
        state: TrainState,
        inputs: Inputs,
        targets: torch.Tensor,
        indices: torch.Tensor,
    ) -> tuple[Inputs, torch.Tensor]:
        return shift_images(inputs, self.max_shift, self.generator), targets
