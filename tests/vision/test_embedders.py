"""Embedders (issue 16): dlib's ResNet, OpenCV's SFace, their fusion and a model brought by
the user pass the same pipeline tests; SFace equals OpenCV's own FaceRecognizerSF; a
different SFace file is refused; a sidecar that does not say how to feed the model is a
clear error."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.conftest import DATA
from visage.config import Settings
from visage.core import Visage
from visage.errors import ModelMissingError
from visage.media.image import read_image_file
from visage.vision.align import ARCFACE_SIZE, arcface_chip
from visage.vision.embed import OnnxEmbedder
from visage.vision.embedders import (
    SFACE_ID,
    EmbedderError,
    OnnxFileEmbedder,
    make_embedder,
    model_id_of,
    runnable_graph,
    sface,
)
from visage.vision.fusion import alignments_of
from visage.vision.pipeline import FaceAnalyzer, PipelineOptions
from visage.vision.spec import DLIB_ID

LFW = DATA / "lfw10"
SAME = ("Ariel_Sharon/Ariel_Sharon_0001.jpg", "Ariel_Sharon/Ariel_Sharon_0002.jpg")
OTHER = "Arnold_Schwarzenegger/Arnold_Schwarzenegger_0001.jpg"
TINY_DIM = 32


def _pixels(name: str) -> np.ndarray:
    return read_image_file(LFW / name, max_pixels=10**8, max_bytes=10**9).pixels


def tiny_model(folder: Path, **sidecar: object) -> Path:
    """A model of one's own, built here: it flattens an ArcFace chip (NCHW float) and
    multiplies it by a fixed random matrix: a random projection, which keeps the cosine of
    two chips roughly (so one face is closer to itself than to another, not much more)."""
    rng = np.random.default_rng(16)
    weights = rng.standard_normal((3 * ARCFACE_SIZE * ARCFACE_SIZE, TINY_DIM)).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["input"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["embedding"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, TINY_DIM])],
        initializer=[numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = folder / "tiny.onnx"
    onnx.save(model, str(path))
    spec = {
        "alignment": '"arcface112"',
        "channels": '"bgr"',
        "mean": "[127.5, 127.5, 127.5]",
        "std": "128.0",
        "dim": str(TINY_DIM),
    }
    spec.update({k: str(v) for k, v in sidecar.items()})
    path.with_suffix(".toml").write_text("".join(f"{k} = {v}\n" for k, v in spec.items()))
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module", params=["dlib-resnet", "sface", "dlib-resnet+sface", "own"])
def analyzer(request: pytest.FixtureRequest, shared_app: Visage, tiny: Path) -> FaceAnalyzer:
    """The pipeline with each embedder, sharing the session's detector and aligner."""
    setting = f"onnx:{tiny}" if request.param == "own" else request.param
    built = FaceAnalyzer(PipelineOptions(embedder=setting))
    built.detector, built.aligner = shared_app.analyzer.detector, shared_app.analyzer.aligner
    return built


def test_pipeline_with_each_embedder(analyzer: FaceAnalyzer) -> None:
    """One face per LFW image, a unit vector of the model's dimension, the reference chip
    always dlib's 150x150; the same person scores above another person."""
    faces = {name: analyzer.analyze(_pixels(name)) for name in (*SAME, OTHER)}
    dim = analyzer.embedder.spec.dim
    for found in faces.values():
        assert len(found) == 1
        vector = found[0].embedding
        assert vector is not None and vector.shape == (dim,)
        assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
        assert found[0].chip is not None and found[0].chip.shape == (150, 150, 3)
    a, b, c = (faces[n][0].embedding for n in (*SAME, OTHER))
    assert a is not None and b is not None and c is not None
    if analyzer.options.embedder.startswith("onnx:"):
        # A random projection knows no faces: check instead that the sidecar's feeding was
        # applied exactly (BGR, (x - 127.5) / 128, NCHW, flattened, times the matrix).
        pixels = _pixels(SAME[0])
        chip = arcface_chip(pixels, analyzer.detector.detect(pixels)[0].landmarks)
        x = (chip[..., ::-1].astype(np.float32) - 127.5) / 128.0
        weights = numpy_helper.to_array(
            onnx.load(analyzer.options.embedder[5:]).graph.initializer[0]
        )
        expected = x.transpose(2, 0, 1).reshape(-1) @ weights
        assert np.allclose(a, expected / np.linalg.norm(expected), atol=1e-4)
    else:
        assert float(a @ b) > float(a @ c) + 0.1
    # The model id names the space: templates of different models never meet.
    assert analyzer.model_id == model_id_of(analyzer.options.embedder)


def test_pipeline_embeds_reference_chips(analyzer: FaceAnalyzer) -> None:
    """What a migration does: a template from the kept 150x150 chip, close to the one from
    the photo (the same chip for dlib's model; for ArcFace-aligned ones the face is found
    again in the chip)."""
    face = analyzer.analyze(_pixels(SAME[0]))[0]
    assert face.chip is not None and face.embedding is not None
    again = analyzer.embed_reference(face.chip)
    assert again is not None and again.shape == face.embedding.shape
    if analyzer.options.embedder.startswith("onnx:"):
        return  # a random projection says nothing about faces; the two above do
    floor = 0.999 if alignments_of(analyzer.embedder) == ("dlib150",) else 0.8
    assert float(again @ face.embedding) > floor


def test_sface_equals_opencv_face_recognizer(shared_app: Visage, tmp_path: Path) -> None:
    """Our SFace (ONNX Runtime, RGB chips, no mean or std) gives OpenCV's FaceRecognizerSF
    embedding on the same aligned chips (OpenCV takes BGR and swaps it)."""
    embedder = sface()
    graph = onnx.load_from_string(runnable_graph(embedder.path.read_bytes()))
    for value in [*graph.graph.input, *graph.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_value = 1  # OpenCV's importer wants it fixed
    clean = tmp_path / "sface.onnx"
    onnx.save(graph, str(clean))
    reference = cv2.FaceRecognizerSF.create(str(clean), "")
    names = sorted(p.relative_to(LFW).as_posix() for p in LFW.glob("*/*_0001.jpg"))[:6]
    for name in names:
        pixels = _pixels(name)
        detection = shared_app.analyzer.detector.detect(pixels)[0]
        chip = arcface_chip(pixels, detection.landmarks)
        ours = embedder.embed([chip])[0]
        theirs = reference.feature(np.ascontiguousarray(chip[..., ::-1])).ravel()
        theirs = theirs / np.linalg.norm(theirs)
        assert float(ours @ theirs) > 0.9999, name
    # Batches give the rows one at a time gives.
    chips = [
        arcface_chip(_pixels(n), shared_app.analyzer.detector.detect(_pixels(n))[0].landmarks)
        for n in names[:3]
    ]
    together = embedder.embed(chips)
    apart = np.concatenate([embedder.embed([c]) for c in chips])
    assert np.allclose(together, apart, atol=1e-5)


def test_a_different_sface_file_is_refused(tmp_path: Path) -> None:
    genuine = sface()
    tampered = tmp_path / "sface.onnx"
    shutil.copy(genuine.path, tampered)
    with tampered.open("ab") as fh:
        fh.write(b"\0")
    impostor = OnnxFileEmbedder(SFACE_ID, tampered, genuine.spec, sha256=genuine.sha256)
    with pytest.raises(EmbedderError, match="not the expected"):
        impostor.embed([np.zeros((112, 112, 3), np.uint8)])
    missing = OnnxFileEmbedder(SFACE_ID, tmp_path / "nope.onnx", genuine.spec)
    with pytest.raises(ModelMissingError):
        missing.check()


def test_dlib_resnet_is_still_the_default(tmp_path: Path) -> None:
    core = Visage(Settings(home=tmp_path / "no-home"))
    assert core.embedder == "dlib-resnet" and core.model_id == DLIB_ID
    assert isinstance(make_embedder("dlib-resnet"), OnnxEmbedder)
    assert Visage(Settings(home=tmp_path / "no-home", embedder="sface")).model_id == SFACE_ID


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"alignment": '"mtcnn"'}, "alignment must be one of"),
        ({"channels": '"rgba"'}, "channels must be"),
        ({"std": "[1, 0, 1]"}, "std must not be 0"),
        ({"dim": '"many"'}, "must set alignment and dim"),
        ({"extra": "1"}, "unknown keys"),
    ],
)
def test_bad_sidecars_are_clear_errors(
    tmp_path: Path, change: dict[str, str], message: str
) -> None:
    path = tiny_model(tmp_path, **change)
    with pytest.raises(EmbedderError, match=message):
        make_embedder(f"onnx:{path}")


def test_own_model_needs_its_file_and_sidecar(tmp_path: Path, tiny: Path) -> None:
    with pytest.raises(EmbedderError, match="does not exist"):
        make_embedder(f"onnx:{tmp_path / 'absent.onnx'}")
    lonely = tmp_path / "lonely.onnx"
    shutil.copy(tiny, lonely)
    with pytest.raises(EmbedderError, match="needs its sidecar"):
        make_embedder(f"onnx:{lonely}")
    # The sidecar's dimension is checked against what the model gives.
    wrong = tmp_path / "wrong.onnx"
    shutil.copy(tiny, wrong)
    wrong.with_suffix(".toml").write_text('alignment = "arcface112"\ndim = 7\n')
    with pytest.raises(EmbedderError, match="sidecar says 7"):
        make_embedder(f"onnx:{wrong}").embed([np.zeros((112, 112, 3), np.uint8)])


def test_embedder_setting_is_validated() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="embedder must be"):
        Settings(embedder="facenet")
    assert Settings(embedder=" sface ").embedder == "sface"
