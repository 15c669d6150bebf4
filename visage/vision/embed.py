"""Embedding: dlib's ResNet (``dlib_face_recognition_resnet_model_v1``) on aligned chips.

:class:`OnnxEmbedder` is what Visage runs: the shipped dlib weights converted to an ONNX
graph on first use (see :mod:`visage.vision.dlib_onnx`), cached, and run with ONNX
Runtime in batches — about 20x faster than dlib on a 2-core CPU, with descriptors equal
to dlib's within float rounding (cosine >= 0.9999, tested). :class:`DlibEmbedder` runs the
same network through dlib itself and is kept as the reference for that test and the
benchmarks.

Vectors are L2-normalised so that the dot product of two templates is their cosine
similarity, the score that :mod:`visage.gallery.matching` calibrates.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from visage.vision.model import LazyModel, file_sha256, package_file, write_atomically
from visage.vision.ort import make_session
from visage.vision.spec import DLIB_ID, DLIB_SPEC, EmbedderSpec
from visage.vision.types import RGBImage

EMBEDDING_DIM = 128
MODEL_ID = DLIB_ID
"""Both embedders compute the same embedding space; templates carry this id."""

_log = logging.getLogger(__name__)


def _resnet_path() -> Path:
    return package_file(
        "face_recognition_models",
        "models/dlib_face_recognition_resnet_model_v1.dat",
        pip_name="face_recognition_models",
    )


def normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


class OnnxEmbedder(LazyModel[object]):
    """128-d descriptors from 150x150 aligned RGB chips, with ONNX Runtime.

    ``cache_dir``: where the converted graph is kept (the user cache dir); without one
    the conversion (about a second) is redone in each process.
    """

    name = MODEL_ID
    spec: EmbedderSpec = DLIB_SPEC

    def __init__(
        self, cache_dir: Path | None = None, *, threads: int = 0, batch_size: int = 16
    ) -> None:
        super().__init__()
        self.path = _resnet_path()
        self.cache_dir = cache_dir
        self.threads = threads
        self.batch_size = batch_size

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def cached_graph_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{MODEL_ID}-{self.fingerprint[:16]}.onnx"

    def convert(self) -> bytes:
        """The ONNX graph, converted from the shipped dlib weights."""
        from visage.vision.dlib_format import read_dlib_net
        from visage.vision.dlib_onnx import to_onnx  # imports onnx: only to convert

        return bytes(to_onnx(read_dlib_net(self.path.read_bytes())).SerializeToString())

    def _graph_bytes(self) -> bytes | str:
        """The cached graph's path (ONNX Runtime reads it without a copy in Python), or the
        graph converted now (and cached)."""
        target = self.cached_graph_path()
        if target is not None and target.is_file():
            return str(target)
        graph = self.convert()
        if target is not None:
            write_atomically(target, graph)  # a reader never sees half a file
        return graph

    def _load(self) -> object:
        try:
            return make_session(self._graph_bytes(), intra_op_threads=self.threads)
        except Exception as exc:  # a corrupt cached graph: clear it and convert once more
            target = self.cached_graph_path()
            if target is None or not target.exists():
                raise
            _log.warning("cached embedder graph %s unusable (%s); reconverting", target, exc)
            target.unlink()
            return make_session(self._graph_bytes(), intra_op_threads=self.threads)

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """One unit-length row per chip, shape (len(chips), 128)."""
        if not chips:
            return np.empty((0, EMBEDDING_DIM), np.float32)
        session = self.model
        # The graph's one input, read from the session: naming it through dlib_onnx would
        # import onnx, which only the conversion needs.
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        batch = np.ascontiguousarray(np.stack(chips), dtype=np.uint8)
        rows = [
            session.run(None, {name: batch[i : i + self.batch_size]})[0]  # type: ignore[attr-defined]
            for i in range(0, len(batch), self.batch_size)
        ]
        return normalize(np.concatenate(rows).astype(np.float32))


class DlibEmbedder(LazyModel[object]):
    """The same network run by dlib: the reference for tests and benchmarks."""

    name = MODEL_ID

    def __init__(self) -> None:
        super().__init__()
        self.path = _resnet_path()
        self._call_lock = threading.Lock()

    def _load(self) -> object:
        import dlib

        return dlib.face_recognition_model_v1(str(self.path))

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def raw(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """Unnormalised descriptors, as dlib returns them."""
        if not chips:
            return np.empty((0, EMBEDDING_DIM), np.float32)
        net = self.model
        with self._call_lock:  # dlib objects are not documented as thread-safe
            out = net.compute_face_descriptor(list(chips))  # type: ignore[attr-defined]
        return np.asarray([np.asarray(v) for v in out], dtype=np.float32)

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        return normalize(self.raw(chips))
