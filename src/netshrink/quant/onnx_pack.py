"""Narrow integer weights stored as 4-bit codes inside an ONNX file, unpacked by the graph.

    from netshrink.quant import onnx_pack
    onnx_pack.pack_narrow_weights("encoder.onnx")   # in place; returns the weights it packed

An int8 weight of MatMulInteger whose every column (one output) spans at most 16 consecutive
integers, as 4-bit GPTQ rows do (code - zero, netshrink.quant.weight_only.integer_linear), is
written as two 4-bit codes a byte plus one int32 offset a column. A few graph operators
(BitShift, Sub, Concat, Reshape, Cast, Add) rebuild the int8 weight from them; all their
inputs are constants, so onnxruntime folds them once when the session starts and the products
run on the same int8 tensor as before: the file halves, the speed does not change.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from netshrink.fileio import atomic_path

LEVELS = 16  # 4-bit codes


def _narrow_weights(graph) -> dict[str, np.ndarray]:
    """{initializer name: int8 array} of the MatMulInteger weights that fit 16 levels a
    column."""
    from onnx import TensorProto, numpy_helper

    initializers = {t.name: t for t in graph.initializer}
    inputs = {i.name for i in graph.input}  # an initializer listed as an input can be fed
    names = {node.input[1] for node in graph.node if node.op_type == "MatMulInteger"} - inputs
    found = {}
    for name in sorted(names):
        tensor = initializers.get(name)
        if tensor is None or tensor.data_type != TensorProto.INT8 or len(tensor.dims) != 2:
            continue
        weight = numpy_helper.to_array(tensor).astype(np.int32)
        span = weight.max(axis=0) - weight.min(axis=0)
        if weight.size % 2 == 0 and int(span.max()) < LEVELS:
            found[name] = weight
    return found


def _unpack_nodes(name: str, weight: np.ndarray) -> tuple[list, list]:
    """(initializers, nodes) that compute the int8 tensor `name` from its packed codes."""
    from onnx import TensorProto, helper, numpy_helper

    offset = weight.min(axis=0)
    codes = (weight - offset).astype(np.uint8).reshape(-1)
    packed = codes[0::2] | (codes[1::2] << 4)  # low nibble first
    p = f"{name}__pack4"
    initializers = [
        numpy_helper.from_array(packed.astype(np.uint8), f"{p}_codes"),
        numpy_helper.from_array(np.array([4], dtype=np.uint8), f"{p}_four"),
        numpy_helper.from_array(np.array(weight.shape, dtype=np.int64), f"{p}_shape"),
        numpy_helper.from_array(offset.astype(np.int32), f"{p}_offset"),
    ]
    nodes = [
        helper.make_node("BitShift", [f"{p}_codes", f"{p}_four"], [f"{p}_high"],
                         direction="RIGHT"),
        helper.make_node("BitShift", [f"{p}_high", f"{p}_four"], [f"{p}_high_up"],
                         direction="LEFT"),
        helper.make_node("Sub", [f"{p}_codes", f"{p}_high_up"], [f"{p}_low"]),
        helper.make_node("Unsqueeze", [f"{p}_low", f"{p}_axis"], [f"{p}_low2"]),
        helper.make_node("Unsqueeze", [f"{p}_high", f"{p}_axis"], [f"{p}_high2"]),
        helper.make_node("Concat", [f"{p}_low2", f"{p}_high2"], [f"{p}_pairs"], axis=1),
        helper.make_node("Reshape", [f"{p}_pairs", f"{p}_shape"], [f"{p}_grid"]),
        helper.make_node("Cast", [f"{p}_grid"], [f"{p}_wide"], to=TensorProto.INT32),
        helper.make_node("Add", [f"{p}_wide", f"{p}_offset"], [f"{p}_shifted"]),
        helper.make_node("Cast", [f"{p}_shifted"], [name], to=TensorProto.INT8),
    ]
    initializers.append(numpy_helper.from_array(np.array([1], dtype=np.int64), f"{p}_axis"))
    return initializers, nodes


def pack_narrow_weights(path: str | os.PathLike) -> list[str]:
    """Rewrite the ONNX file at `path` with its narrow MatMulInteger weights packed (see the
    module docstring); the names of the weights packed, none if there were none."""
    import onnx

    path = Path(path)
    model = onnx.load(str(path))
    graph = model.graph
    found = _narrow_weights(graph)
    if not found:
        return []
    kept = [t for t in graph.initializer if t.name not in found]
    added, nodes = [], []
    for name, weight in found.items():
        inits, unpack = _unpack_nodes(name, weight)
        added += inits
        nodes += unpack
    del graph.initializer[:]
    graph.initializer.extend(kept + added)
    existing = list(graph.node)
    del graph.node[:]
    graph.node.extend(nodes + existing)  # the weights first: the graph stays in order
    with atomic_path(path) as tmp:
        onnx.save(model, str(tmp))
        onnx.checker.check_model(str(tmp))
    return sorted(found)
