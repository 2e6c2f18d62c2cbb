"""What general-purpose compressors make of a model, so that the .nsz coding earns its place.

The baseline is the plain int8 file: the model's weights quantized to int8 (netshrink's
Dynamic quantization, which needs no data; pruned weights stay zero) and saved dense
(`netshrink.save(..., sparse=False)`), then compressed whole by gzip (-9), xz (-9e) and
zstd (-19). A .nsz file should beat all three.
"""

from __future__ import annotations

import copy
import gzip
import lzma
import tempfile
from pathlib import Path

from torch import nn

from netshrink.errors import NetshrinkError

COMPRESSORS = ("gzip", "xz", "zstd")


def compressed_sizes(data: bytes) -> dict[str, int]:
    """{compressor: bytes} of `data` under gzip -9, xz -9e and zstd -19."""
    try:
        import zstandard
    except ImportError:
        raise NetshrinkError("the zstd baseline needs the zstandard package: pip install "
                             "'netshrink[pack]'") from None
    return {"gzip": len(gzip.compress(data, compresslevel=9, mtime=0)),
            "xz": len(lzma.compress(data, preset=9 | lzma.PRESET_EXTREME)),
            "zstd": len(zstandard.ZstdCompressor(level=19).compress(data))}


def int8_file(model: nn.Module, path: str | Path) -> Path:
    """Write `model` quantized to int8 (Dynamic, a copy) as a plain dense safetensors file."""
    import netshrink
    from netshrink.quant import Dynamic

    quantized = copy.deepcopy(model).cpu()
    netshrink.quantize_(quantized, Dynamic())
    return netshrink.save(quantized, path, sparse=False)


def int8_baselines(model: nn.Module) -> dict[str, int]:
    """{"int8": bytes of the plain int8 file, "int8+gzip" / "int8+xz" / "int8+zstd": bytes of
    it compressed}."""
    with tempfile.TemporaryDirectory() as tmp:
        data = int8_file(model, Path(tmp) / "int8.safetensors").read_bytes()
    return {"int8": len(data), **{f"int8+{k}": v for k, v in compressed_sizes(data).items()}}
