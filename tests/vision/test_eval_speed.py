"""What ``visage eval`` does to be fast must not change what it measures: only the main
face of each image is aligned and embedded, and the models load while the first image is
detected; every image still gets the vector the full pipeline gives its main face."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from visage.config import Settings
from visage.core import Visage
from visage.usecases.evaluate import _main_embedding, embed_images
from visage.usecases.faces import primary_detection, primary_face


def test_main_face_only_is_the_full_pipelines_main_face(shared_app: Visage, data: Path) -> None:
    """On pictures with several faces, the face eval embeds alone is the one the full
    analysis picks, with the same vector."""
    paths = sorted((data / "scenes").glob("*.jpg"))
    assert len(paths) == 3
    for path in paths:
        loaded = shared_app.load_image(path)
        faces = shared_app.analyzer.analyze(loaded.pixels)
        assert len(faces) >= 2, path.name  # the choice is a real one
        full = primary_face(faces, loaded.width, loaded.height)
        assert full is not None and full.embedding is not None
        picked = primary_detection([f.detection for f in faces], loaded.width, loaded.height)
        assert picked is full.detection
        alone = _main_embedding(shared_app, path)
        assert alone is not None
        assert float(alone @ full.embedding) > 0.99999, path.name


def test_no_face_and_unreadable_give_none(shared_app: Visage, tmp_path: Path) -> None:
    (tmp_path / "blank.png").write_bytes(_blank_png())
    (tmp_path / "broken.jpg").write_text("not an image")
    assert _main_embedding(shared_app, tmp_path / "blank.png") is None
    assert _main_embedding(shared_app, tmp_path / "broken.jpg") is None


def test_models_loading_beside_the_first_detection_give_the_same_vectors(
    shared_app: Visage, data: Path, tmp_path: Path
) -> None:
    """A core whose models are not loaded yet (as in a fresh ``visage eval``): the aligner
    and embedder load on one worker while the other detects; the vectors are those of the
    warm session's models, each in its own image's slot."""
    root = data / "lfw10"
    names = sorted(str(p.relative_to(root)) for p in root.glob("*/*_0001.jpg"))
    assert len(names) == 10
    cold = Visage(Settings(home=tmp_path / "home", cache_dir=shared_app.settings.cache_dir))
    try:
        got = embed_images(cold, root, names)
    finally:
        cold.close()
    warm = embed_images(shared_app, root, names)
    assert list(got) == names
    for name in names:
        a, b = got[name], warm[name]
        assert a is not None and b is not None
        assert abs(float(np.linalg.norm(a)) - 1.0) < 1e-5
        assert float(a @ b) > 0.99999, name
    # Each slot holds its own image's vector: different people are not the same vector.
    assert float(got[names[0]] @ got[names[1]]) < 0.99  # type: ignore[operator]


def _blank_png() -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (128, 128, 128)).save(buf, format="PNG")
    return buf.getvalue()
