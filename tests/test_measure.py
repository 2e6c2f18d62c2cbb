"""Counting parameters, non-zeros, FLOPs and timing."""

import threading
import time

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from netshrink import measure


class Half(nn.Module):
    def __init__(self, shape):
        super().__init__()
        self.register_buffer("mask", (torch.arange(shape.numel()) % 2).reshape(shape).float())

    def forward(self, w):
        return w * self.mask


def test_counts_through_parametrizations():
    model = nn.Sequential(nn.Linear(4, 6), nn.Linear(6, 2, bias=False))
    assert measure.count_parameters(model) == 4 * 6 + 6 + 6 * 2
    parametrize.register_parametrization(model[0], "weight", Half(model[0].weight.shape))
    assert measure.count_parameters(model) == 4 * 6 + 6 + 6 * 2
    assert measure.count_nonzero(model) == 12 + 6 + 12


def test_flops_of_linear_and_conv():
    assert measure.flops(nn.Sequential(nn.Flatten(), nn.Linear(784, 300)), (1, 28, 28)) == (
        2 * 784 * 300
    )
    conv = nn.Conv2d(1, 6, 5, padding=2)
    assert measure.flops(conv, (1, 28, 28)) == 2 * 28 * 28 * 6 * 25


def test_latency_statistics_are_ordered():
    model = nn.Linear(64, 64)
    before = torch.get_num_threads()
    stats = measure.latency(model, torch.rand(8, 64), repeats=20, num_threads=1)
    assert stats.runs == 20 and stats.threads == 1
    assert 0 < stats.p10 <= stats.median <= stats.p90
    assert torch.get_num_threads() == before, "the thread count is restored"


def test_compare_latency_interleaves():
    order = []
    stats = measure.compare_latency({"a": lambda: order.append("a"),
                                     "b": lambda: order.append("b")}, repeats=3, warmup=1)
    assert order == ["a", "b", "a", "b", "a", "b", "a", "b"]
    assert set(stats) == {"a", "b"}


def test_compare_latency_settles_each_candidate_before_timing_it():
    order = []
    stats = measure.compare_latency({"a": lambda: order.append("a"),
                                     "b": lambda: order.append("b")}, repeats=2, warmup=0,
                                    settle=1)
    assert order == ["a", "a", "b", "b", "a", "a", "b", "b"]
    assert all(s.runs == 2 for s in stats.values())
    with pytest.raises(ValueError, match="settle"):
        measure.compare_latency({"a": lambda: None}, settle=-1)


def _spin_for(seconds: float) -> threading.Thread:
    """A thread that keeps one core busy for `seconds`, as a runtime's idle workers do."""
    def spin():
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            pass
    thread = threading.Thread(target=spin)
    thread.start()
    return thread


def test_wait_until_idle_returns_at_once_when_no_thread_works():
    assert measure.wait_until_idle(0.5) < 0.05


def test_wait_until_idle_waits_for_a_spinning_thread_and_no_longer():
    thread = _spin_for(0.08)
    waited = measure.wait_until_idle(1.0)
    thread.join()
    assert 0.06 <= waited < 0.5


def test_wait_until_idle_gives_up_after_max_wait():
    thread = _spin_for(0.5)
    waited = measure.wait_until_idle(0.05)
    thread.join()
    assert 0.05 <= waited < 0.2


def test_compare_latency_isolated_waits_then_settles_each_candidate(monkeypatch):
    order = []
    monkeypatch.setattr(measure, "wait_until_idle", lambda: order.append("wait"))
    monkeypatch.setattr(measure, "SETTLE_SECONDS", 0.0)
    measure.compare_latency({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                            repeats=1, warmup=0, settle=1, isolate=True)
    assert order == ["wait", "a", "a", "wait", "b", "b"]


def test_compare_latency_isolated_settles_for_settle_seconds():
    calls = []
    stats = measure.compare_latency({"a": lambda: calls.append("a"), "b": lambda: None},
                                    repeats=2, warmup=0, isolate=True)
    untimed = len(calls) - 2
    assert untimed >= 2 * 10, "settled for SETTLE_SECONDS of calls, not one call"
    assert stats["a"].runs == 2
    assert measure.compare_latency({"a": lambda: None}, repeats=2, isolate=True)["a"].runs == 2


def test_file_size(tmp_path):
    (tmp_path / "f").write_bytes(b"x" * 123)
    assert measure.file_size(tmp_path / "f") == 123
