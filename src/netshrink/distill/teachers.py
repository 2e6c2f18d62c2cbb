"""Teachers: one model, or an ensemble whose softened probabilities are averaged.

Every teacher is asked for its members' logits, shaped (M, B, C) with M = 1 for a single model,
so the soft targets at any temperature (and the cache, which stores these logits) treat both
alike. Teachers always run in eval mode without gradients: dropout off, BatchNorm statistics
frozen, as Hinton et al. use the trained net's predictions.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from netshrink.data.inputs import Inputs, call
from netshrink.errors import NetshrinkError


class Ensemble(nn.Module):
    """N models as one classifier: the average of their probabilities.

    forward(...) returns log(mean_m softmax(z_m)), so argmax is the ensemble's prediction and
    cross-entropy on it is the ensemble's loss; `member_logits` gives each member's logits.
    The members take the ensemble's arguments, whatever they are (one tensor, two, keywords).
    """

    def __init__(self, members: Sequence[nn.Module]):
        super().__init__()
        members = list(members)
        if not members:
            raise NetshrinkError("an ensemble needs at least one member model")
        for i, member in enumerate(members):
            if not isinstance(member, nn.Module):
                raise NetshrinkError(
                    f"ensemble member {i} is a {type(member).__name__}, not a torch nn.Module"
                )
        self.members = nn.ModuleList(members)

    def member_logits(self, inputs: Inputs) -> torch.Tensor:
        """(M, B, C) logits of the M members on `inputs` (a tensor, a tuple or a dict)."""
        return self._stacked([call(member, inputs) for member in self.members])

    @staticmethod
    def _stacked(outputs: list[torch.Tensor]) -> torch.Tensor:
        shapes = {tuple(o.shape) for o in outputs}
        if len(shapes) != 1:
            raise NetshrinkError(
                f"ensemble members disagree on their output shape: {sorted(shapes)}; every "
                "member must predict the same classes"
            )
        return torch.stack(outputs)

    def forward(self, *args: torch.Tensor, **kwargs: torch.Tensor) -> torch.Tensor:
        logits = self._stacked([member(*args, **kwargs) for member in self.members])
        probs = torch.softmax(logits.float(), dim=-1).mean(0)
        return probs.clamp_min(torch.finfo(probs.dtype).tiny).log()


def as_teacher(teacher: nn.Module | Sequence[nn.Module]) -> nn.Module:
    """A model, or an Ensemble of a list of models (a list of one is that model)."""
    if isinstance(teacher, nn.Module):
        return teacher
    if isinstance(teacher, Sequence) and not isinstance(teacher, str):
        members = list(teacher)
        return members[0] if len(members) == 1 and isinstance(members[0], nn.Module) else (
            Ensemble(members))
    raise NetshrinkError(
        f"teacher must be a torch nn.Module or a list of them (an ensemble), got "
        f"{type(teacher).__name__}"
    )


@torch.no_grad()
def member_logits(teacher: nn.Module, inputs: Inputs) -> torch.Tensor:
    """(M, B, C) logits of a teacher on a batch of inputs (M = 1 for a single model)."""
    if isinstance(teacher, Ensemble):
        return teacher.member_logits(inputs)
    out = call(teacher, inputs)
    if not isinstance(out, torch.Tensor) or out.dim() != 2:
        raise NetshrinkError(
            f"the teacher must return (batch, classes) logits, got "
            f"{getattr(out, 'shape', type(out).__name__)}"
        )
    return out.unsqueeze(0)


def num_members(teacher: nn.Module) -> int:
    return len(teacher.members) if isinstance(teacher, Ensemble) else 1
