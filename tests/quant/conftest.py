"""Quantization tests run on one thread: on a shared, loaded machine two OpenMP threads can make
each small tensor operation hundreds of times slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
