"""Convert dlib's face-recognition ResNet (as read by :mod:`dlib_format`) to ONNX.

The architecture is dlib's documented one (``dnn_face_recognition_ex.cpp``): a 7x7/2
convolution stem and max pool, then residual units of two 3x3 convolutions each followed
by a per-channel affine layer, and a 128-output linear layer after global average pooling.
Down-sampling units add an average-pooled copy of their input. The weights are only those
shipped in ``face_recognition_models``; nothing new is trained or downloaded.

Two dlib semantics matter for exactness:

* each affine layer (frozen batch norm, ``y = gamma * x + beta`` per channel) is folded
  into the convolution before it;
* ``add_prev`` adds tensors of different shapes by zero-padding both to the larger size in
  every dimension (channels, rows, columns), so the graph pads before adding.

The graph takes aligned 150x150 RGB chips as uint8 NHWC and returns raw (unnormalised)
128-d descriptors, exactly as dlib's ``compute_face_descriptor``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from visage.vision.dlib_format import DlibFormatError, DlibNet, Layer

INPUT_NAME = "chips"
OUTPUT_NAME = "descriptors"
_RESIDUAL = ["con", "affine", "relu", "con", "affine", "add_prev", "relu"]
_RESIDUAL_DOWN = ["con", "affine", "relu", "con", "affine", "avg_pool", "add_prev", "relu"]


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, int, int]  # channels, rows, columns


class _GraphBuilder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def fresh(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint: str, value: NDArray[np.generic]) -> str:
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self.fresh(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x: _Tensor, con: Layer, affine: Layer) -> _Tensor:
        filters, nr, nc, sy, sx, py, px = con.ints
        (o, k, fr, fc), _ = con.shapes
        if (o, fr, fc) != (filters, nr, nc) or k != x.shape[0]:
            raise DlibFormatError(f"convolution shape {con.shapes[0]} does not fit input {x.shape}")
        w = con.params[: o * k * nr * nc].reshape(o, k, nr, nc).astype(np.float64)
        b = con.params[o * k * nr * nc : o * k * nr * nc + o].astype(np.float64)
        gamma = affine.params[:o].astype(np.float64)
        beta = affine.params[o : 2 * o].astype(np.float64)
        w_folded = (w * gamma[:, None, None, None]).astype(np.float32)
        b_folded = (b * gamma + beta).astype(np.float32)
        out = self.node(
            "Conv",
            [x.name, self.const("w", w_folded), self.const("b", b_folded)],
            "conv",
            kernel_shape=[nr, nc],
            strides=[sy, sx],
            pads=[py, px, py, px],
        )
        rows = (x.shape[1] + 2 * py - nr) // sy + 1
        cols = (x.shape[2] + 2 * px - nc) // sx + 1
        return _Tensor(out, (o, rows, cols))

    def relu(self, x: _Tensor) -> _Tensor:
        return _Tensor(self.node("Relu", [x.name], "relu"), x.shape)

    def pool(self, x: _Tensor, layer: Layer, op: str) -> _Tensor:
        nr, nc, sy, sx, py, px = layer.ints
        if nr == 0 and nc == 0:  # pool over everything
            return _Tensor(self.node("GlobalAveragePool", [x.name], "gap"), (x.shape[0], 1, 1))
        out = self.node(
            op, [x.name], "pool", kernel_shape=[nr, nc], strides=[sy, sx], pads=[py, px, py, px]
        )
        rows = (x.shape[1] + 2 * py - nr) // sy + 1
        cols = (x.shape[2] + 2 * px - nc) // sx + 1
        return _Tensor(out, (x.shape[0], rows, cols))

    def pad_to(self, x: _Tensor, shape: tuple[int, int, int]) -> str:
        extra = [t - s for t, s in zip(shape, x.shape, strict=True)]
        if not any(extra):
            return x.name
        pads = np.array([0, 0, 0, 0, 0, *extra], dtype=np.int64)
        return self.node("Pad", [x.name, self.const("pads", pads)], "pad", mode="constant")

    def add(self, a: _Tensor, b: _Tensor) -> _Tensor:
        shape = tuple(max(p, q) for p, q in zip(a.shape, b.shape, strict=True))
        shape3 = (shape[0], shape[1], shape[2])
        out = self.node("Add", [self.pad_to(a, shape3), self.pad_to(b, shape3)], "add")
        return _Tensor(out, shape3)


def _kinds(layers: list[Layer]) -> list[str]:
    return [layer.kind for layer in layers]


def to_onnx(net: DlibNet, opset: int = 17) -> onnx.ModelProto:
    """Build the ONNX graph of ``net``; raises DlibFormatError on an unexpected layout."""
    g = _GraphBuilder()
    rows, cols = net.input_size
    mean = np.array(net.input_mean, dtype=np.float32).reshape(1, 1, 1, 3)
    x = g.node("Cast", [INPUT_NAME], "float", to=TensorProto.FLOAT)
    x = g.node("Sub", [x, g.const("mean", mean)], "centred")
    x = g.node("Mul", [x, g.const("scale", np.array(1 / 256, dtype=np.float32))], "scaled")
    x = g.node("Transpose", [x], "nchw", perm=[0, 3, 1, 2])
    cur = _Tensor(x, (3, rows, cols))

    layers = net.layers
    if _kinds(layers[:4]) != ["con", "affine", "relu", "max_pool"]:
        raise DlibFormatError("unexpected stem")
    cur = g.relu(g.conv(cur, layers[0], layers[1]))
    cur = g.pool(cur, layers[3], "MaxPool")
    i = 4
    while i < len(layers) - 2:
        if _kinds(layers[i : i + 7]) == _RESIDUAL:
            c1, a1, _, c2, a2 = layers[i : i + 5]
            block = g.conv(g.relu(g.conv(cur, c1, a1)), c2, a2)
            cur = g.relu(g.add(block, cur))
            i += 7
        elif _kinds(layers[i : i + 8]) == _RESIDUAL_DOWN:
            c1, a1, _, c2, a2, pool = layers[i : i + 6]
            block = g.conv(g.relu(g.conv(cur, c1, a1)), c2, a2)
            shortcut = g.pool(cur, pool, "AveragePool")
            cur = g.relu(g.add(shortcut, block))
            i += 8
        else:
            raise DlibFormatError(f"unexpected layers at {i}: {_kinds(layers[i : i + 8])}")
    if _kinds(layers[i:]) != ["avg_pool", "fc"]:
        raise DlibFormatError("unexpected head")
    cur = g.pool(cur, layers[i], "AveragePool")
    fc = layers[i + 1]
    outputs, inputs, bias_mode = fc.ints
    if inputs != cur.shape[0] or bias_mode != 1:
        raise DlibFormatError("expected a bias-free linear layer over the pooled channels")
    flat = g.node("Flatten", [cur.name], "flat", axis=1)
    weights = fc.params[: inputs * outputs].reshape(inputs, outputs)
    g.nodes.append(helper.make_node("MatMul", [flat, g.const("fc", weights)], [OUTPUT_NAME]))

    graph = helper.make_graph(
        g.nodes,
        "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.UINT8, ["batch", rows, cols, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", outputs])],
        initializer=g.inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="visage"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
