"""Cached teacher outputs: reused, and invalidated when the teacher or the data change."""

import copy
import warnings

import pytest
import torch
from safetensors import safe_open

from netshrink.distill.cache import TeacherCache, compute_logits, data_digest, teacher_digest
from netshrink.distill.teachers import Ensemble


@pytest.fixture
def inputs(digits):
    return digits.train.tensors[0][:300]


def test_second_look_up_is_a_hit_and_reads_the_same_logits(tmp_path, trained_teacher, inputs):
    cache = TeacherCache(tmp_path)
    first = cache.logits(trained_teacher, inputs)
    assert (cache.hits, cache.misses) == (0, 1)
    second = TeacherCache(tmp_path).logits(trained_teacher, inputs)
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    assert first.shape == (1, 300, 10)
    torch.testing.assert_close(first[0], trained_teacher(inputs), rtol=0, atol=1e-6)
    with safe_open(str(cache.last_path), framework="pt") as handle:  # safetensors, no pickle
        assert handle.metadata()["teacher"] == teacher_digest(trained_teacher)


def test_changed_teacher_weights_invalidate(tmp_path, trained_teacher, inputs):
    cache = TeacherCache(tmp_path)
    cache.logits(trained_teacher, inputs)
    changed = copy.deepcopy(trained_teacher)
    with torch.no_grad():
        changed[-1].bias[3] += 1.0
    assert teacher_digest(changed) != teacher_digest(trained_teacher)
    fresh = cache.logits(changed, inputs)
    assert cache.misses == 2 and cache.hits == 0
    torch.testing.assert_close(fresh[0], changed(inputs), rtol=0, atol=1e-6)


def test_changed_data_invalidate(tmp_path, trained_teacher, inputs):
    cache = TeacherCache(tmp_path)
    cache.logits(trained_teacher, inputs)
    other = inputs.clone()
    other[0, 0, 0, 0] += 0.5
    assert data_digest(other) != data_digest(inputs)
    cache.logits(trained_teacher, other)
    cache.logits(trained_teacher, inputs[:299])
    assert cache.misses == 3 and cache.hits == 0
    cache.logits(trained_teacher, inputs)
    assert cache.hits == 1


def test_corrupt_cache_file_is_recomputed_not_used(tmp_path, trained_teacher, inputs):
    cache = TeacherCache(tmp_path)
    good = cache.logits(trained_teacher, inputs)
    cache.last_path.write_bytes(cache.last_path.read_bytes()[:100])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        again = cache.logits(trained_teacher, inputs)
    assert any("unreadable" in str(w.message) for w in caught)
    torch.testing.assert_close(again, good)
    assert cache.misses == 2


def test_ensemble_cache_keeps_each_members_logits(tmp_path, trained_teacher, inputs):
    other = copy.deepcopy(trained_teacher)
    with torch.no_grad():
        other[-1].weight.mul_(0.5)
    ensemble = Ensemble([trained_teacher, other])
    logits = TeacherCache(tmp_path).logits(ensemble, inputs)
    assert logits.shape == (2, 300, 10)
    torch.testing.assert_close(logits, compute_logits(ensemble, inputs))
