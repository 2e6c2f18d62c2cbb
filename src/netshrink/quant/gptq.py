"""GPTQ: rounding weights to a grid while compensating each rounding error with the weights
not yet rounded (Frantar, Ashkboos, Hoefler, Alistarh 2022, "GPTQ: Accurate Post-Training
Quantization for Generative Pre-trained Transformers", Algorithm 1).

For a Linear layer with weight W (rows: outputs, columns: inputs) and calibration inputs X,
the layer's output error ||W X - Q X||^2 is a quadratic form in each row with the Hessian
H = 2 X X^T. Rounding the columns one by one, the error of column j is spread over the columns
not yet rounded in the optimal-brain-surgeon way, with the rows of the upper Cholesky factor U
of H^-1:

    err = (w_j - q_j) / U[j, j]          W[:, j+1:] -= err U[j, j+1:]

In blocks of `block_size` columns the updates within the block are done at once per column and
the rest of the matrix is updated once per block ("lazy batch updates", the same arithmetic in
fewer passes over memory). H is damped by `damping` times its mean diagonal (numerical
stability; the paper uses 1%), and inputs that never fire (H[j, j] = 0) get H[j, j] = 1 and a
zero weight. The grid of each group of `group_size` columns is chosen from the weights as they
are when the group's first column is reached (already updated by earlier errors), as the
paper's grouped variant does.

act_order: the columns are rounded in order of decreasing H[j, j] (the inputs with the most
energy first, while the most columns are left to absorb their errors; GPTQ's "act-order"
heuristic, from its authors' code). Only with one group per row, whose grid does not depend
on the order.

The grid itself is the caller's: `grid(columns) -> (scale, zero)` for the group's float
columns, and `round_to(w, scale, zero) -> codes` (netshrink.quant.weight_only).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from netshrink.errors import NetshrinkError

Grid = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
Round = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def inverse_cholesky(hessian: torch.Tensor, damping: float) -> torch.Tensor:
    """The upper Cholesky factor of (H + damping * mean(diag H) * I)^-1, in float64."""
    h = hessian.double().clone()
    diagonal = torch.arange(h.shape[0])
    h[diagonal, diagonal] += damping * float(h.diagonal().mean())
    try:
        lower = torch.linalg.cholesky(h)
        inverse = torch.cholesky_inverse(lower)
        return torch.linalg.cholesky(inverse, upper=True)
    except torch.linalg.LinAlgError:
        raise NetshrinkError(f"GPTQ: the Hessian is not positive definite even with damping="
                             f"{damping}; raise damping (e.g. 0.1) or calibrate on more "
                             "data") from None


def gptq(weight: torch.Tensor, hessian: torch.Tensor, group_size: int, grid: Grid,
         round_to: Round, block_size: int = 128, damping: float = 0.01,
         keep: torch.Tensor | None = None, act_order: bool = False
         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(codes, scales, zeros) of `weight` (out, in) rounded by GPTQ; scales and zeros are
    (out, in / group_size), one per group of `group_size` consecutive inputs.

    keep: a pruning mask; pruned weights are rounded to exactly 0 (their code is the zero
    point) and the error of forcing them there is compensated like any rounding error.
    act_order: round the inputs in order of decreasing H[j, j] (one group per row only)."""
    rows, columns = weight.shape
    if hessian.shape != (columns, columns):
        raise NetshrinkError(f"GPTQ: Hessian {tuple(hessian.shape)} does not match a weight "
                             f"with {columns} inputs")
    if columns % group_size:
        raise NetshrinkError(f"GPTQ: group_size={group_size} must divide the {columns} inputs")
    if act_order:
        if group_size != columns:
            raise NetshrinkError("GPTQ: act_order needs one group per row (group_size=None): "
                                 "groups of consecutive inputs would be cut by the new order")
        order = torch.argsort(hessian.diagonal(), descending=True, stable=True)
        back = torch.argsort(order)
        codes, scales, zeros = gptq(weight[:, order], hessian[order][:, order], group_size,
                                    grid, round_to, block_size, damping,
                                    None if keep is None else keep[:, order])
        return codes[:, back], scales, zeros
    w = weight.detach().double().clone()
    keep = None if keep is None else keep.bool().cpu()
    h = hessian.double().clone()
    dead = h.diagonal() == 0
    h[dead, dead] = 1.0
    w[:, dead] = 0.0
    u = inverse_cholesky(h, damping)
    codes = torch.zeros(rows, columns, dtype=torch.uint8)
    groups = columns // group_size
    scales = torch.zeros(rows, groups, dtype=torch.float64)
    zeros = torch.zeros(rows, groups, dtype=torch.float64)
    for start in range(0, columns, block_size):
        end = min(start + block_size, columns)
        block = w[:, start:end].clone()
        errors = torch.zeros_like(block)
        u_block = u[start:end, start:end]
        for i in range(end - start):
            column = start + i
            if column % group_size == 0:
                g = column // group_size
                ahead = torch.cat([block[:, i:], w[:, end:]], dim=1)[:, :group_size]
                scales[:, g], zeros[:, g] = (t.double() for t in grid(ahead))
            g = column // group_size
            q = round_to(block[:, i:i + 1], scales[:, g:g + 1], zeros[:, g:g + 1])
            if keep is not None:
                q = torch.where(keep[:, column:column + 1], q, zeros[:, g:g + 1])
            codes[:, column] = q[:, 0].to(torch.uint8)
            rounded = (q[:, 0].double() - zeros[:, g]) * scales[:, g]
            error = (block[:, i] - rounded) / u_block[i, i]
            block[:, i:] -= error[:, None] * u_block[i, i:][None, :]
            errors[:, i] = error
        w[:, end:] -= errors @ u[start:end, end:]
    return codes, scales, zeros
