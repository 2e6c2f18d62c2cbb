"""The teacher cache is keyed by inputs of any shape; a single tensor keys as before."""

import hashlib

import torch

from netshrink.distill.cache import TeacherCache, data_digest


def test_digest_names_the_structure_and_keeps_old_keys():
    a, b = torch.rand(5, 3), torch.randint(0, 9, (5, 2))
    digests = {data_digest(a), data_digest((a, b)), data_digest((b, a)),
               data_digest({"a": a, "b": b}), data_digest({"b": a, "a": b})}
    assert len(digests) == 5
    old = hashlib.sha256(b"netshrink-inputs")  # the key cache files were written with
    old.update(f"{a.dtype}{tuple(a.shape)}".encode())
    old.update(a.reshape(-1).view(torch.uint8).numpy())
    assert data_digest(a) == old.hexdigest()


def test_cached_logits_of_a_two_input_teacher(tmp_path, any_inputs):
    build, splits = any_inputs["pair"]
    torch.manual_seed(0)
    teacher = build().eval()
    x = splits.train.inputs
    cache = TeacherCache(tmp_path)
    logits = cache.logits(teacher, x, batch_size=50)
    assert logits.shape == (1, len(splits.train), splits.num_classes)
    torch.testing.assert_close(logits[0], teacher(*x).detach(), rtol=0, atol=1e-6)
    assert torch.equal(TeacherCache(tmp_path).logits(teacher, x), logits)
