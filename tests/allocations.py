"""Measuring what loading a hostile file costs: bytes torch allocates (every new storage,
summed: an upper bound of the peak) and the peak of Python / NumPy allocations (tracemalloc)."""

import tracemalloc
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

LIMIT = 100 * 2**20  # what refusing a file of at most 10 kB may cost (issue 18)


class AllocationCounter(TorchDispatchMode):
    """Bytes of every new tensor storage torch allocates (meta tensors cost nothing): a sum
    of all allocations, so an upper bound of the peak."""

    def __init__(self):
        super().__init__()
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor) and t.device.type != "meta"}
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor) and t.device.type != "meta":
                storage = t.untyped_storage()
                if storage.data_ptr() not in inputs:
                    self.bytes += storage.nbytes()
        return out


def measured(load: Callable[[], object]) -> tuple[int, int]:
    """(torch bytes allocated, peak Python / NumPy bytes) while `load()` runs."""
    with AllocationCounter():  # the first use imports torch's dispatch machinery: not traced
        torch.zeros(1).sum()
    counter = AllocationCounter()
    tracemalloc.start()
    try:
        with counter:
            load()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return counter.bytes, peak
