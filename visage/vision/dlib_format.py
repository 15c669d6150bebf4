"""Reader for dlib's binary serialisation of a DNN (``dlib::serialize(net)``).

Only what the shipped face-recognition ResNet uses is understood. The format, from dlib's
``serialize.h``, ``dnn/core.h``, ``dnn/layers.h`` and ``cuda/tensor.h``:

* integers: one header byte (low nibble = byte count, bit 7 = negative), then the
  magnitude in little-endian bytes;
* floats and doubles: mantissa and exponent as two such integers (value = m * 2**e);
* strings: length, then bytes; booleans: one ASCII byte '0' or '1';
* tensors: version 2, four dimensions (n, k, nr, nc), then raw little-endian float32s;
  alias tensors (views into a layer's parameter tensor): version 1 and four dimensions.

A network is serialised outside-in: each ``add_layer`` writes its version and then its
sub-network first, so after the chain of versions comes the input layer, and then every
layer's details in forward order, each followed by three flags and three (empty) tensors.
Tag and skip layers write only their version; the architecture says where they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


class DlibFormatError(ValueError):
    """The file is not the dlib network this reader expects."""


@dataclass
class Layer:
    """One computational layer as read from the file."""

    kind: str  # "con", "affine", "relu", "max_pool", "avg_pool", "add_prev", "fc"
    params: NDArray[np.float32] = field(default_factory=lambda: np.empty(0, np.float32))
    ints: tuple[int, ...] = ()
    shapes: tuple[tuple[int, int, int, int], ...] = ()


@dataclass
class DlibNet:
    input_mean: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[Layer]


class _Reader:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise DlibFormatError("unexpected end of file")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def peek(self, n: int) -> bytes:
        return self.data[self.pos : self.pos + n]

    def read_int(self) -> int:
        head = self._take(1)[0]
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer header {head:#x} at byte {self.pos - 1}")
        value = int.from_bytes(self._take(size), "little")
        return -value if head & 0x80 else value

    def read_float(self) -> float:
        mantissa = self.read_int()
        exponent = self.read_int()
        return float(mantissa * 2.0**exponent)

    def read_str(self) -> str:
        n = self.read_int()
        if not 0 <= n < 256:
            raise DlibFormatError(f"implausible string length {n} at byte {self.pos}")
        return self._take(n).decode("ascii")

    def read_bool(self) -> bool:
        byte = self._take(1)
        if byte not in (b"0", b"1"):
            raise DlibFormatError(f"bad boolean {byte!r} at byte {self.pos - 1}")
        return byte == b"1"

    def read_tensor(self) -> NDArray[np.float32]:
        if (version := self.read_int()) != 2:
            raise DlibFormatError(f"tensor version {version} unsupported")
        dims = [self.read_int() for _ in range(4)]
        count = int(np.prod(dims))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32).reshape(dims)

    def read_alias(self) -> tuple[int, int, int, int]:
        if (version := self.read_int()) != 1:
            raise DlibFormatError(f"alias tensor version {version} unsupported")
        return (self.read_int(), self.read_int(), self.read_int(), self.read_int())


def _layer(r: _Reader) -> Layer:
    name = r.read_str()
    if name in ("con_4", "con_5"):
        params = r.read_tensor().reshape(-1)
        ints = tuple(r.read_int() for _ in range(7))  # filters, nr, nc, sy, sx, py, px
        shapes = (r.read_alias(), r.read_alias())
        for _ in range(4):
            r.read_float()  # learning-rate and weight-decay multipliers
        if name == "con_5" and not r.read_bool():
            raise DlibFormatError("convolution without bias is not supported")
        return Layer("con", params, ints, shapes)
    if name == "affine_":
        params = r.read_tensor().reshape(-1)
        shapes = (r.read_alias(), r.read_alias())
        mode = r.read_int()
        if mode != 0:
            raise DlibFormatError("only per-channel affine layers are supported")
        return Layer("affine", params, (), shapes)
    if name == "relu_":
        return Layer("relu")
    if name in ("max_pool_2", "avg_pool_2"):
        return Layer(name[:-2], ints=tuple(r.read_int() for _ in range(6)))  # nr nc sy sx py px
    if name == "add_prev_":
        return Layer("add_prev")
    if name == "fc_2":
        num_outputs, num_inputs = r.read_int(), r.read_int()
        params = r.read_tensor().reshape(-1)
        shapes = (r.read_alias(), r.read_alias())
        bias_mode = r.read_int()
        for _ in range(4):
            r.read_float()  # learning-rate and weight-decay multipliers
        return Layer("fc", params, (num_outputs, num_inputs, bias_mode), shapes)
    raise DlibFormatError(f"layer type {name!r} is not supported")


def read_dlib_net(data: bytes) -> DlibNet:
    """Parse the face-recognition ResNet; layers come back in forward order."""
    r = _Reader(data)
    if r.read_int() != 1 or r.read_str() != "loss_metric_2":
        raise DlibFormatError("not a dlib metric-learning network (loss_metric_2)")
    r.read_float()  # margin
    r.read_float()  # distance threshold
    while r.peek(2) in (b"\x01\x01", b"\x01\x02"):  # add/tag/skip layer versions
        r.read_int()
    if r.read_int() != 3:
        raise DlibFormatError("expected the input-side layer (version 3)")
    if r.read_str() != "input_rgb_image_sized":
        raise DlibFormatError("expected an input_rgb_image_sized input layer")
    mean = (r.read_float(), r.read_float(), r.read_float())
    size = (r.read_int(), r.read_int())
    layers: list[Layer] = []
    first = True
    while r.pos < len(r.data):
        layers.append(_layer(r))
        for _ in range(3):
            r.read_bool()  # setup called, gradient stale, output disabled
        for _ in range(3):
            r.read_tensor()  # x_grad, cached_output, params_grad: empty in a saved model
        if first:
            r.read_int()  # the input-side add_layer's sample expansion factor
            first = False
        if layers[-1].kind == "fc":
            break
    return DlibNet(input_mean=mean, input_size=size, layers=layers)
