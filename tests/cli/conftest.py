"""Command tests train small models on one torch thread: on a shared machine a second OpenMP
thread mostly waits."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)
