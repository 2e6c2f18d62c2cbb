"""The one training loop. Masks, quantization-aware training and distillation join it as callbacks.

It records the history (train loss, validation loss and accuracy), the early-stopping iteration
(the iteration of minimum validation loss, as the Lottery Ticket paper defines it) and the test
accuracy both at the end and at the early-stopping iteration.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from netshrink.data import Examples, Splits, tensors_of
from netshrink.data.inputs import (
    Inputs,
    call,
    check,
    check_finite,
    describe_batch,
    labels_of,
    standard_dtypes,
    take,
    to_device,
)
from netshrink.errors import NetshrinkError
from netshrink.fileio import atomic_write
from netshrink.train.callbacks import Callback, TrainState, overriding
from netshrink.train.config import TrainConfig

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
# The running loss is checked for NaN / infinity this often (one device sync), and at each
# evaluation: a diverged run stops within this many steps instead of training NaN weights.
FINITE_CHECK_EVERY = 25


@dataclass
class TrainResult:
    """What a run measured. `best_state` (the weights at early stopping) is not serialized."""

    history: list[dict]
    iterations: int
    seconds: float
    test_accuracy: float
    test_loss: float
    early_stop_iteration: int | None
    early_stop_test_accuracy: float | None
    best_state: dict | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        out = asdict(self)
        out.pop("best_state")
        return out


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NetshrinkError(f"device={name!r} is not a device; use cpu, cuda or auto") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise NetshrinkError(f"device={name!r} but CUDA is not available; use cpu or auto")
    return device


BUCKET_POOL = 50  # batches per pool sorted by length (TrainConfig.bucket)


def batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool,
    generator: torch.Generator | None = None,
    bucket: bool = False,
) -> Iterator[tuple[Inputs, torch.Tensor, torch.Tensor]]:
    """(inputs, targets, indices) batches. Inputs are a tensor, a tuple or a dict of tensors
    (netshrink.data.inputs); in-memory data is sliced directly (no DataLoader). `bucket`:
    batches of similar length (TrainConfig.bucket)."""
    if isinstance(dataset, Examples | TensorDataset):
        x, y = tensors_of(dataset)
        n = len(y)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        if bucket:
            for idx in bucketed(order, token_lengths(x), batch_size, generator):
                yield take(x, idx), y[idx], idx
            return
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield take(x, idx), y[idx], idx
        return
    if bucket:
        raise NetshrinkError(_BUCKET_NEEDS)
    loader = DataLoader(_Indexed(dataset), batch_size=batch_size, shuffle=shuffle,
                        generator=generator)
    for x, y, idx in loader:
        yield standard_dtypes(check(x)), labels_of(y), idx


_BUCKET_NEEDS = ("bucket=True needs token inputs in memory: a dict with an attention_mask "
                 "(netshrink.data.Examples); set bucket=False for other data")


def token_lengths(inputs: Inputs) -> torch.Tensor:
    """Each example's token count: its attention_mask's sum."""
    mask = inputs.get("attention_mask") if isinstance(inputs, dict) else None
    if mask is None:
        raise NetshrinkError(_BUCKET_NEEDS)
    return mask.reshape(len(mask), -1).sum(1)


def bucketed(
    order: torch.Tensor,
    lengths: torch.Tensor,
    batch_size: int,
    generator: torch.Generator | None = None,
) -> list[torch.Tensor]:
    """`order` cut into batches of similar length: pools of BUCKET_POOL batches in that order,
    each sorted by length (ties keep their order), cut into batches, the batches shuffled."""
    pool = batch_size * BUCKET_POOL
    out: list[torch.Tensor] = []
    for start in range(0, len(order), pool):
        chunk = order[start : start + pool]
        chunk = chunk[torch.argsort(lengths[chunk], stable=True)]
        out.extend(chunk.split(batch_size))
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


class _Indexed(Dataset):
    """A Dataset that also returns each example's index (for cached teacher outputs)."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, i: int):
        x, y = self.dataset[i][:2]
        return x, y, i


def first_call(model: nn.Module, x: Inputs, what: str) -> object:
    """The first training forward of `what`: a model that cannot run on the data's inputs (a
    float64 model: netshrink's floating inputs are float32) is one clear error, not torch's."""
    try:
        return call(model, x)
    except RuntimeError as err:
        dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
        hint = (f"; netshrink feeds floating inputs as float32 and the model's parameters are "
                f"{', '.join(sorted(str(d).removeprefix('torch.') for d in dtypes))}: "
                "use model.float()") if dtypes - {torch.float32} else ""
        raise NetshrinkError(f"{what}: the model cannot run on a training batch "
                             f"({describe_batch(x)}): {str(err).splitlines()[0]}{hint}"
                             ) from None


def logits(out: object, what: str) -> torch.Tensor:
    """`out` when it is one tensor; else one clear error: `what` needs (batch, classes) logits
    and a model returning a tuple or dict (logits and attention weights) gives no single one."""
    if isinstance(out, torch.Tensor):
        return out
    raise NetshrinkError(
        f"{what} needs one tensor of (batch, classes) logits, and the model returns a "
        f"{type(out).__name__}; wrap it so that its forward returns the logits (e.g. a module "
        "whose forward is `return model(x)[0]`), or pass loss_fn= for training on the whole "
        "output")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device | str = "cpu",
    batch_size: int = 1000,
    loss_fn: LossFn = F.cross_entropy,
) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on `dataset`, in eval mode; the mode is restored."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    total_loss, correct, count = 0.0, 0, 0
    for x, y, _ in batches(dataset, batch_size, shuffle=False):
        x, y = to_device(x, device), y.to(device)
        out = logits(call(model, x), "evaluate (accuracy)")
        total_loss += float(loss_fn(out, y)) * len(y)
        correct += int((out.argmax(1) == y).sum())
        count += len(y)
    model.train(was_training)
    if count == 0:
        raise NetshrinkError("cannot evaluate on an empty data set")
    return total_loss / count, correct / count


def fit(
    model: nn.Module,
    data: Splits,
    config: TrainConfig | None = None,
    callbacks: Sequence[Callback] = (),
    loss_fn: LossFn = F.cross_entropy,
    log_csv: str | os.PathLike | None = None,
    progress: bool | None = None,
    restore_best: bool = False,
) -> TrainResult:
    """Train `model` on `data.train`, evaluate on `data.val`, test on `data.test`.

    restore_best: leave the model at its early-stopping weights instead of its last ones.
    progress: show a progress bar (None: only when stderr is a terminal).
    """
    if not isinstance(data, Splits):
        raise NetshrinkError(
            "data must be a netshrink.data.Splits; use netshrink.data.load(name) or "
            "netshrink.data.from_tensors(train, test)"
        )
    config = config or TrainConfig()
    device = resolve_device(config.device)
    seed_everything(config.seed)
    previous_determinism = torch.are_deterministic_algorithms_enabled()
    if config.deterministic:
        torch.use_deterministic_algorithms(True)
    try:
        return _fit(model.to(device), data, config, list(callbacks), loss_fn, log_csv,
                    progress, restore_best, device)
    finally:
        torch.use_deterministic_algorithms(previous_determinism)


def make_optimizer(
    model: nn.Module, config: TrainConfig, extra: Sequence[nn.Parameter] = ()
) -> torch.optim.Optimizer:
    """The optimizer of the model's trainable parameters and `extra` ones (callbacks' own)."""
    params = [p for p in model.parameters() if p.requires_grad]
    seen = {id(p) for p in params}
    params += [p for p in extra if p.requires_grad and id(p) not in seen]
    if not params:
        raise NetshrinkError("the model has no trainable parameters")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                               weight_decay=config.weight_decay)
    cls = torch.optim.Adam if config.optimizer == "adam" else torch.optim.AdamW
    return cls(params, lr=config.lr, weight_decay=config.weight_decay)


def total_iterations(config: TrainConfig, train_size: int) -> tuple[int, int]:
    """(iterations, iterations per epoch) for a training set of `train_size` examples."""
    per_epoch = math.ceil(train_size / config.batch_size)
    return config.iterations or max(1, math.ceil(config.epochs * per_epoch)), per_epoch


def _fit(model, data, config, callbacks, loss_fn, log_csv, progress, restore_best, device):
    if len(data.train) == 0:
        raise NetshrinkError("the training set is empty")
    in_memory = isinstance(data.train, Examples | TensorDataset)
    if in_memory:  # checked once here; a lazy Dataset's batches are checked as they come
        check_finite(tensors_of(data.train)[0], "the training inputs")
    if config.bucket:  # data it cannot bucket is refused before any step
        if not in_memory:
            raise NetshrinkError(_BUCKET_NEEDS)
        token_lengths(tensors_of(data.train)[0])
    extra = [p for cb in overriding(callbacks, "trainable_parameters")
             for p in cb.trainable_parameters()]
    optimizer = make_optimizer(model, config, extra)
    total, per_epoch = total_iterations(config, len(data.train))
    scheduler = None
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    eval_every = config.eval_every or per_epoch
    state = TrainState(model, optimizer, config, device, total)
    batch_hooks = overriding(callbacks, "on_batch")
    loss_hooks = overriding(callbacks, "loss")
    backward_hooks = overriding(callbacks, "after_backward")
    step_hooks = overriding(callbacks, "after_step")
    for cb in callbacks:
        cb.on_fit_start(state)

    generator = torch.Generator().manual_seed(config.seed)
    history: list[dict] = []
    best_loss, best_iteration, best_state = math.inf, None, None
    running, running_count = torch.zeros((), device=device), 0
    show = progress if progress is not None else _stderr_is_terminal()
    bar = tqdm(total=total, disable=not show, leave=False, desc="train", unit="it")
    start = time.perf_counter()
    model.train()
    while state.iteration < total and not state.stop:
        for x, y, idx in batches(data.train, config.batch_size, True, generator,
                                 config.bucket):
            if not in_memory:
                check_finite(x, "the training inputs")
            x, y = to_device(x, device, non_blocking=True), y.to(device, non_blocking=True)
            for cb in batch_hooks:
                x, y = cb.on_batch(state, x, y, idx)
            outputs = first_call(model, x, "fit") if state.iteration == 0 else call(model, x)
            loss = loss_fn(logits(outputs, "the default loss (cross-entropy)")
                           if loss_fn is F.cross_entropy else outputs, y)
            for cb in loss_hooks:
                loss = cb.loss(state, x, y, idx, outputs, loss)
            optimizer.zero_grad(set_to_none=True)
            if not loss.requires_grad:
                raise NetshrinkError(
                    "the loss does not depend on any trainable parameter: integer layers pass "
                    "no gradient (train a quantized model with QAT, then convert)")
            loss.backward()
            for cb in backward_hooks:
                cb.after_backward(state)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            state.iteration += 1
            for cb in step_hooks:
                cb.after_step(state)
            running += loss.detach()
            running_count += 1
            bar.update(1)
            if state.iteration % FINITE_CHECK_EVERY == 0:
                _check_finite_loss(float(running), state, config)
            if state.iteration % eval_every == 0 or state.iteration == total:
                _check_finite_loss(float(running), state, config)
                row = _evaluate_row(model, data, state, running, running_count, loss_fn)
                running, running_count = torch.zeros((), device=device), 0
                history.append(row)
                if row["val_loss"] is not None and row["val_loss"] < best_loss:
                    best_loss, best_iteration = row["val_loss"], state.iteration
                    best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                for cb in callbacks:
                    cb.on_eval(state, row)
                if row["val_accuracy"] is not None:
                    bar.set_postfix(val_acc=f"{row['val_accuracy']:.4f}")
                if log_csv is not None:
                    atomic_write(log_csv, _to_csv(history))
            if state.iteration >= total or state.stop:
                break
        state.epoch += 1
    bar.close()
    seconds = time.perf_counter() - start
    for cb in callbacks:
        cb.on_fit_end(state)

    test_loss, test_accuracy = evaluate(model, data.test, device, loss_fn=loss_fn)
    early_acc = None
    if best_state is not None:
        final_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best_state)
        _, early_acc = evaluate(model, data.test, device, loss_fn=loss_fn)
        if not restore_best:
            model.load_state_dict(final_state)
    return TrainResult(history, state.iteration, seconds, test_accuracy, test_loss,
                       best_iteration, early_acc, best_state)


def _check_finite_loss(running: float, state: TrainState, config: TrainConfig) -> None:
    """Stop a run whose loss became NaN or infinite, naming the likely cause (the inputs
    were checked finite before they reached the model)."""
    if math.isfinite(running):
        return
    raise NetshrinkError(
        f"training diverged: the loss became {running} by iteration {state.iteration} and the "
        f"weights are no longer usable. The likely cause is the learning rate (lr="
        f"{config.lr:g} with {config.optimizer}): lower it, e.g. lr={config.lr / 10:g}; or a "
        "loss function or labels that give NaN (the inputs were checked finite)"
    )


def _evaluate_row(model, data, state, running, running_count, loss_fn) -> dict:
    row = {"iteration": state.iteration, "epoch": state.epoch,
           "train_loss": float(running) / max(1, running_count),
           "val_loss": None, "val_accuracy": None}
    if len(data.val) > 0:
        row["val_loss"], row["val_accuracy"] = evaluate(model, data.val, state.device,
                                                        loss_fn=loss_fn)
    return row


def _to_csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _stderr_is_terminal() -> bool:
    import sys

    return sys.stderr.isatty()
