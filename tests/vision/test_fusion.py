"""Score-level fusion as a model (issue 16): the fused template of dlib's ResNet and SFace is
both models' unit vectors, weighted, so that its cosine is exactly the weighted sum of the
two models' cosines on real lfw10 faces; genuine pairs outscore impostors, and the built-in
calibration puts them on the right side of its FMR 1e-3 threshold; the setting, model id,
fingerprint and the search index follow the fused space."""

from __future__ import annotations

import math
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import DATA
from tests.vision.test_embedders import TINY_DIM, tiny_model
from visage.config import Settings
from visage.core import Visage
from visage.gallery.index import ExactIndex
from visage.gallery.matching import DLIB_SFACE, built_in_calibration
from visage.media.image import read_image_file
from visage.usecases.faces import primary_face
from visage.vision.embedders import check_name, make_embedder, model_id_of
from visage.vision.fusion import FusedEmbedder, alignments_of
from visage.vision.pipeline import FaceAnalyzer, PipelineOptions
from visage.vision.spec import DLIB_ID, SFACE_ID

LFW = DATA / "lfw10"
PEOPLE = ("Ariel_Sharon", "Colin_Powell", "George_W_Bush", "Tony_Blair")


def _analyzer(setting: str, shared: Visage) -> FaceAnalyzer:
    built = FaceAnalyzer(PipelineOptions(embedder=setting))
    built.detector, built.aligner = shared.analyzer.detector, shared.analyzer.aligner
    return built


def _names() -> list[str]:
    return [f"{p}/{f.name}" for p in PEOPLE for f in sorted((LFW / p).glob("*.jpg"))[:3]]


@pytest.fixture(scope="module")
def embedded(shared_app: Visage) -> dict[str, dict[str, np.ndarray]]:
    """The main face of 12 lfw10 photos (4 people x 3) with each part alone and fused."""
    analyzers = {s: _analyzer(s, shared_app) for s in ("dlib-resnet", "sface", "dlib-resnet+sface")}
    out: dict[str, dict[str, np.ndarray]] = {s: {} for s in analyzers}
    for name in _names():
        pixels = read_image_file(LFW / name, max_pixels=10**8, max_bytes=10**9).pixels
        height, width = pixels.shape[:2]
        for setting, analyzer in analyzers.items():
            main = primary_face(analyzer.analyze(pixels), width, height)  # as eval picks it
            assert main is not None and main.embedding is not None, name
            out[setting][name] = main.embedding
    return out


def test_fused_cosine_is_the_weighted_sum_of_the_parts(
    embedded: dict[str, dict[str, np.ndarray]],
) -> None:
    w = 0.13  # the weight calibrated for dlib + SFace (model id ...@0.13)
    dlib, sface, fused = (embedded[s] for s in ("dlib-resnet", "sface", "dlib-resnet+sface"))
    for name, vector in fused.items():
        assert vector.shape == (256,) and abs(float(np.linalg.norm(vector)) - 1) < 1e-5
        # Each part was fed its own alignment: dlib's 150 chip, SFace's ArcFace 112 chip.
        expected = np.concatenate([math.sqrt(w) * dlib[name], math.sqrt(1 - w) * sface[name]])
        assert np.allclose(vector, expected, atol=1e-5), name
    for a, b in combinations(fused, 2):
        parts = w * float(dlib[a] @ dlib[b]) + (1 - w) * float(sface[a] @ sface[b])
        assert float(fused[a] @ fused[b]) == pytest.approx(parts, abs=1e-5)


def test_genuine_pairs_score_above_impostors(embedded: dict[str, dict[str, np.ndarray]]) -> None:
    fused = embedded["dlib-resnet+sface"]
    calibration = built_in_calibration(model_id_of("dlib-resnet+sface"))
    assert calibration is DLIB_SFACE
    threshold = calibration.threshold_for(1e-3)
    assert threshold is not None
    genuine, impostor = [], []
    for a, b in combinations(sorted(fused), 2):
        score = calibration.score(float(fused[a] @ fused[b]))
        (genuine if a.split("/")[0] == b.split("/")[0] else impostor).append(score)
    assert len(genuine) == 12 and len(impostor) == 54
    assert min(genuine) > max(impostor)
    assert min(genuine) >= threshold > max(impostor)


def test_fusion_setting_and_model_id() -> None:
    assert check_name("dlib-resnet+sface") == "dlib-resnet+sface"
    assert Settings(embedder="dlib-resnet+sface").embedder == "dlib-resnet+sface"
    assert model_id_of("dlib-resnet+sface") == f"{DLIB_ID}+{SFACE_ID}@0.13"
    # Another weight, or the other order, is another embedding space.
    assert model_id_of("dlib-resnet+sface@0.5") == f"{DLIB_ID}+{SFACE_ID}@0.50"
    assert model_id_of("sface+dlib-resnet") == f"{SFACE_ID}+{DLIB_ID}@0.50"  # not calibrated
    for bad in ("sface+sface", "dlib-resnet+facenet", "dlib-resnet+sface@1.5", "a+b+c"):
        with pytest.raises(ValueError, match=r"embedder must be|weight"):
            check_name(bad)
    with pytest.raises(ValueError, match="embedder must be"):
        Settings(embedder="dlib-resnet+facenet")
    # The settings read the same grammar as the models: a "+" inside an onnx: path is part
    # of the path, and a weight outside (0, 1) is refused when the setting is read.
    own = "onnx:/models/a+b/model.onnx"
    assert Settings(embedder=own).embedder == check_name(own) == own
    assert Settings(embedder=f"dlib-resnet+{own}").embedder == f"dlib-resnet+{own}"
    with pytest.raises(ValueError, match="weight"):
        Settings(embedder="dlib-resnet+sface@1.5")


def test_fingerprint_covers_both_parts_and_the_weight(tmp_path: Path) -> None:
    dlib, sface = make_embedder("dlib-resnet"), make_embedder("sface")
    fused = make_embedder("dlib-resnet+sface")
    assert isinstance(fused, FusedEmbedder) and fused.weight == 0.13
    assert alignments_of(fused) == ("dlib150", "arcface112")
    assert fused.fingerprint == FusedEmbedder(dlib, sface, 0.13).fingerprint
    assert fused.fingerprint != FusedEmbedder(dlib, sface, 0.5).fingerprint
    assert fused.fingerprint != FusedEmbedder(sface, dlib, 0.13).fingerprint
    # Another file in place of one part: another fingerprint (and another model id).
    own = make_embedder(f"onnx:{tiny_model(tmp_path)}")
    with_own = FusedEmbedder(dlib, own, 0.13)
    assert with_own.fingerprint != fused.fingerprint and with_own.name != fused.name
    assert with_own.spec.dim == 128 + TINY_DIM


def test_index_takes_the_fused_dimension(embedded: dict[str, dict[str, np.ndarray]]) -> None:
    """The search index holds 256-d fused templates and refuses another model's 128-d."""
    fused = embedded["dlib-resnet+sface"]
    names = sorted(fused)
    index = ExactIndex()
    index.add([n.split("/")[0] for n in names], np.stack([fused[n] for n in names]))
    hits = index.search(fused[names[0]][None, :], k=1)[0]
    assert hits[0].label == names[0].split("/")[0] and hits[0].cosine == pytest.approx(1.0)
    with pytest.raises(ValueError, match="256"):
        index.add(["x"], embedded["dlib-resnet"][names[0]][None, :])
