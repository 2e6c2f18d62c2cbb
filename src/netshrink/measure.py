"""What a model costs: parameters, non-zeros, bytes on disk, FLOPs, latency.

Latency follows the rules for a shared machine: fixed thread count, warm-up, many repetitions,
median and spread; `compare_latency` alternates candidates (A B A B ...) so that a burst of load
from elsewhere hits every side alike, and can wait between them until the last one's runtime
threads stop spinning, so that no side is timed sharing the cores with another's.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink.data.inputs import (
    Inputs,
    Shape,
    call,
    check,
    check_shape,
    filled,
    is_inputs,
    take,
    to_device,
)
from netshrink.errors import NetshrinkError


def effective_parameters(model: nn.Module) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, tensor) of every parameter as the forward pass sees it (masks applied)."""
    for module_name, module in model.named_modules():
        if isinstance(module, parametrize.ParametrizationList):
            continue  # its `original` is reported through the parametrized module above
        prefix = f"{module_name}." if module_name else ""
        if parametrize.is_parametrized(module):
            for name in module.parametrizations:
                yield prefix + name, getattr(module, name).detach()
        for name, param in module.named_parameters(recurse=False):
            yield prefix + name, param.detach()


def count_parameters(model: nn.Module) -> int:
    """Number of parameters (a masked weight counts at its full size)."""
    return sum(t.numel() for _, t in effective_parameters(model))


def count_nonzero(model: nn.Module) -> int:
    """Number of non-zero parameters as the forward pass sees them."""
    return sum(int(torch.count_nonzero(t)) for _, t in effective_parameters(model))


def file_size(path: str | os.PathLike) -> int:
    """Size in bytes of a file on disk."""
    return os.path.getsize(path)


def flops(model: nn.Module, example: Inputs | Shape | None = None, *,
          input_shape: Shape | None = None) -> int:
    """FLOPs of one forward pass of one example through the dense model (a MAC is 2 FLOPs).

    example: example inputs as the model takes them (a tensor, a tuple or a dict of tensors,
    batched; the first example is counted), so token ids and several inputs work; or one
    example's shape, as `Splits.input_shape` holds it, for float inputs of zeros (the zoo's
    images: flops(model, (1, 28, 28))). input_shape= names the second form.
    Counted by torch.utils.flop_counter (matrix products, convolutions, attention), on a batch
    of one. PyTorch's fused attention paths are turned off while counting (the transformer
    layers' fast path and the fused attention kernels), as the counter cannot see inside
    them: their products would count as nothing.
    """
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    inputs = _one_example(model, example, input_shape)
    was_training, fast_path = model.training, torch.backends.mha.get_fastpath_enabled()
    model.eval()
    counter = FlopCounterMode(display=False)
    try:
        torch.backends.mha.set_fastpath_enabled(False)
        with counter, torch.no_grad(), sdpa_kernel(SDPBackend.MATH):
            call(model, inputs)
    finally:
        torch.backends.mha.set_fastpath_enabled(fast_path)
        model.train(was_training)
    return int(counter.get_total_flops())


def _one_example(model: nn.Module, example, input_shape) -> Inputs:
    """A batch of one example on the model's device, from example inputs or a shape."""
    if (example is None) == (input_shape is None):
        raise NetshrinkError("give example inputs (a tensor, a tuple or a dict of tensors) or "
                             "input_shape=, exactly one of them")
    device = next((t.device for t in [*model.parameters(), *model.buffers()]),
                  torch.device("cpu"))
    if input_shape is None and is_inputs(tuple(example) if isinstance(example, list)
                                         else example):
        return to_device(take(check(example, "example"), slice(0, 1)), device)
    return filled(check_shape(input_shape if example is None else example), 0.0, device=device)


@dataclass(frozen=True)
class LatencyStats:
    """Seconds per call: median, the 10th and 90th percentiles, number of timed runs, threads."""

    median: float
    p10: float
    p90: float
    runs: int
    threads: int

    def to_dict(self) -> dict:
        return asdict(self)


@contextlib.contextmanager
def threads(n: int | None) -> Iterator[int]:
    """Run the block with `n` torch threads (None: leave as is); restores the old count."""
    old = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)


def _stats(samples: list[float], n_threads: int) -> LatencyStats:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=10) if len(ordered) > 1 else [ordered[0]] * 9
    return LatencyStats(statistics.median(ordered), q[0], q[-1], len(ordered), n_threads)


IDLE_WAIT = 0.25
"""Seconds an isolated timing waits at most for the last candidate's threads to go idle."""
SETTLE_SECONDS = 0.02
"""Seconds of untimed calls before each isolated timed call."""


def wait_until_idle(max_wait: float = IDLE_WAIT, step: float = 0.01) -> float:
    """Sleep until this process's threads stop using the CPU, or `max_wait` seconds pass;
    returns the seconds waited.

    Runtimes keep their worker threads spinning after a call, waiting for the next one
    (onnxruntime's for tens of milliseconds of CPU on the 2-core machine of 2026-12-02, see
    benchmarks/bench_timing_isolation.py); a model of another runtime started in that window
    shares the cores with them.

    step: the window over which the process's CPU time is read. Linux accounts the time of a
    thread running on another core at its scheduler ticks (4 ms here), so a 2 ms window could
    read zero beside a spinning thread; 10 ms spans at least two ticks.
    """
    start = time.perf_counter()
    while True:
        cpu, wall = time.process_time(), time.perf_counter()
        time.sleep(step)
        now = time.perf_counter()
        if (time.process_time() - cpu) < 0.1 * (now - wall) or now - start >= max_wait:
            return now - start


def compare_latency(
    candidates: dict[str, Callable[[], object]],
    repeats: int = 50,
    warmup: int = 5,
    num_threads: int | None = None,
    settle: int = 0,
    isolate: bool = False,
) -> dict[str, LatencyStats]:
    """Time each zero-argument callable, interleaved A B A B ..., after `warmup` calls each.

    settle: untimed calls of each candidate just before each of its timed calls, so that its
    own threads are awake when the clock starts, as they are for a model called repeatedly.
    isolate: time each candidate as if it ran alone, for candidates on different runtimes
    (PyTorch, onnxruntime): before its turn, wait for the previous candidate's threads to stop
    spinning (`wait_until_idle`), then settle it for at least SETTLE_SECONDS of calls
    (benchmarks/bench_timing_isolation.py compares the protocols with each side timed alone).
    """
    if not candidates:
        raise ValueError("compare_latency needs at least one candidate")
    if settle < 0:
        raise ValueError(f"settle={settle} must be 0 or more")
    isolate = isolate and len(candidates) > 1
    with threads(num_threads) as n, torch.inference_mode():
        for fn in candidates.values():
            for _ in range(warmup):
                fn()
        samples: dict[str, list[float]] = {name: [] for name in candidates}
        for _ in range(repeats):
            for name, fn in candidates.items():
                if isolate:
                    wait_until_idle()
                started = time.perf_counter()
                for _ in range(settle):
                    fn()
                while isolate and time.perf_counter() - started < SETTLE_SECONDS:
                    fn()
                t0 = time.perf_counter()
                fn()
                samples[name].append(time.perf_counter() - t0)
    return {name: _stats(s, n) for name, s in samples.items()}


def latency(
    model: nn.Module | Callable,
    example: Inputs,
    repeats: int = 50,
    warmup: int = 5,
    num_threads: int | None = None,
) -> LatencyStats:
    """Latency of one call on `example` in eval mode: model(x), model(*x) or model(**x) as
    the example is a tensor, a tuple or a dict of tensors (netshrink.data.inputs)."""
    if isinstance(model, nn.Module):
        model.eval()
    return compare_latency({"model": lambda: call(model, example)}, repeats, warmup,
                           num_threads)["model"]
