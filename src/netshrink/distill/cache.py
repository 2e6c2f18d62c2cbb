"""Cached teacher outputs: computed once, stored on disk, reused by every student.

A cache file holds the teacher members' logits on every training example, (M, N, C) float32,
in safetensors (never pickle), written atomically. Its name is keyed by a SHA-256 of the
teacher (structure, parameters and buffers) and one of the training inputs (a tensor, a tuple
or a dict of tensors: names, dtypes, shapes and values), so a changed teacher or changed data
finds no file and recomputes: the old entry cannot be used by mistake.
Logits rather than probabilities are stored, so students at any temperature share one entry.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from netshrink.data.inputs import Inputs, count, take, tensors
from netshrink.data.inputs import to_device as inputs_to
from netshrink.distill.teachers import member_logits, num_members
from netshrink.fileio import atomic_path

FORMAT = "netshrink-teacher-cache"
VERSION = "1"


def _update_with_tensor(h, tensor: torch.Tensor) -> None:
    t = tensor.detach().cpu().contiguous()
    h.update(f"{t.dtype}{tuple(t.shape)}".encode())
    h.update(t.reshape(-1).view(torch.uint8).numpy())


def teacher_digest(teacher: nn.Module) -> str:
    """SHA-256 of the teacher's structure (module tree and zoo spec), parameters and buffers."""
    h = hashlib.sha256(f"{FORMAT}-{VERSION}".encode())
    h.update(repr(teacher).encode())
    specs = [getattr(m, "netshrink_spec", None) for m in teacher.modules()]
    h.update(json.dumps(specs, sort_keys=True, default=str).encode())
    for name, tensor in teacher.state_dict().items():
        h.update(name.encode())
        _update_with_tensor(h, tensor)
    return h.hexdigest()


def data_digest(inputs: Inputs) -> str:
    """SHA-256 of the training inputs, in order (the cache is indexed by example position).

    A single tensor hashes as it always did (old cache files stay valid); a tuple adds its
    length and a dict its names, so (a, b), (b, a) and {"a": a, "b": b} differ."""
    h = hashlib.sha256(b"netshrink-inputs")
    if isinstance(inputs, dict):
        h.update(json.dumps(list(inputs)).encode())
    elif isinstance(inputs, tuple):
        h.update(f"tuple{len(inputs)}".encode())
    for tensor in tensors(inputs):
        _update_with_tensor(h, tensor)
    return h.hexdigest()


class TeacherCache:
    """A folder of cached teacher logits. `hits` and `misses` count the look-ups."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0
        self.last_path: Path | None = None

    def path(self, teacher_key: str, data_key: str) -> Path:
        return self.folder / f"teacher-{teacher_key[:20]}-data-{data_key[:20]}.safetensors"

    def logits(
        self, teacher: nn.Module, inputs: Inputs, device: torch.device | str = "cpu",
        batch_size: int = 1000,
    ) -> torch.Tensor:
        """(M, N, C) teacher logits on `inputs`, from the cache or computed and stored."""
        teacher_key, data_key = teacher_digest(teacher), data_digest(inputs)
        path = self.last_path = self.path(teacher_key, data_key)
        stored = self._read(path, teacher_key, data_key, num_members(teacher), count(inputs))
        if stored is not None:
            self.hits += 1
            return stored
        self.misses += 1
        logits = compute_logits(teacher, inputs, device, batch_size)
        metadata = {"format": FORMAT, "version": VERSION, "teacher": teacher_key,
                    "data": data_key, "members": str(logits.shape[0]),
                    "examples": str(logits.shape[1])}
        with atomic_path(path) as tmp:
            save_file({"logits": logits.contiguous()}, str(tmp), metadata=metadata)
        return logits

    @staticmethod
    def _read(path: Path, teacher_key: str, data_key: str, members: int,
              examples: int) -> torch.Tensor | None:
        if not path.exists():
            return None
        try:
            with safe_open(str(path), framework="pt") as handle:
                meta = handle.metadata() or {}
                logits = handle.get_tensor("logits")
        except (SafetensorError, OSError, ValueError, RuntimeError) as err:
            warnings.warn(f"{path}: unreadable teacher cache ({err}); recomputing it",
                          stacklevel=3)
            return None
        ok = (meta.get("format") == FORMAT and meta.get("teacher") == teacher_key
              and meta.get("data") == data_key and logits.dim() == 3
              and logits.shape[:2] == (members, examples) and bool(torch.isfinite(logits).all()))
        if not ok:
            warnings.warn(f"{path}: teacher cache does not match this teacher and data; "
                          "recomputing it", stacklevel=3)
            return None
        return logits


@torch.no_grad()
def compute_logits(teacher: nn.Module, inputs: Inputs, device: torch.device | str = "cpu",
                   batch_size: int = 1000) -> torch.Tensor:
    """(M, N, C) teacher logits on `inputs`, in eval mode (the mode is restored), on the CPU."""
    was_training = teacher.training
    teacher.eval()
    try:
        parts = [member_logits(teacher, inputs_to(take(inputs, slice(i, i + batch_size)),
                                                  device)).float().cpu()
                 for i in range(0, count(inputs), batch_size)]
    finally:
        teacher.train(was_training)
    return torch.cat(parts, dim=1)
