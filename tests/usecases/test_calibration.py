"""Calibration (issue 16): ``visage eval --calibrate`` on the fused model (dlib's ResNet +
SFace) stores its calibration under the fused model id, reports the fitted fusion weight, and
the threshold follows the FMR target; a second core on the same data dir (a replica) picks up
a calibration stored by the first without a restart."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import DATA, database_url_of, make_app
from visage.config import Settings
from visage.core import Visage
from visage.gallery.matching import DEFAULT_THRESHOLD, calibration_key
from visage.store.meta import get_meta
from visage.usecases.evaluate import evaluate
from visage.vision.embedders import model_id_of
from visage.vision.pipeline import FaceAnalyzer, PipelineOptions

LFW = DATA / "lfw10"
PEOPLE = {"Ariel_Sharon", "Colin_Powell", "Tony_Blair"}


@pytest.fixture(scope="module")
def pairs_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """lfw10's pairs among three people (30 photos, 435 pairs): quick to embed."""
    rows = [
        r
        for r in csv.DictReader((LFW / "pairs.csv").open())
        if {r["image_a"].split("/")[0], r["image_b"].split("/")[0]} <= PEOPLE
    ]
    path = tmp_path_factory.mktemp("pairs") / "pairs.csv"
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=["image_a", "image_b", "same"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def _share_models(core: Visage, models: Visage) -> Visage:
    analyzer = FaceAnalyzer(PipelineOptions(embedder=core.embedder))
    analyzer.detector, analyzer.aligner = models.analyzer.detector, models.analyzer.aligner
    core._analyzer = analyzer
    return core


def test_calibrate_the_fused_model(tmp_path: Path, shared_app: Visage, pairs_csv: Path) -> None:
    app = make_app(tmp_path / "home", embedder="dlib-resnet+sface", target_fmr=1e-2)
    _share_models(app, shared_app)
    try:
        fused_id = model_id_of("dlib-resnet+sface")
        report = evaluate(app, pairs_csv, LFW, calibrate=True)
        assert report.model == fused_id and report.calibrated
        assert (report.genuine, report.impostor) == (135, 300)
        with app.store.session() as session:
            assert get_meta(session, calibration_key(fused_id)) is not None
        calibration = app.calibration
        assert calibration.model_id == fused_id and calibration.genuine == 135
        # The threshold follows VISAGE_TARGET_FMR (here 1e-2) and meets it on these pairs.
        assert app.threshold == calibration.threshold_for(1e-2) == report.threshold
        assert report.fmr <= 1e-2 and report.accuracy > 0.95
        # The two-feature fit's weight for dlib's cosine (what A+B@W would use).
        assert report.fusion_weight is not None and 0.0 < report.fusion_weight < 1.0
    finally:
        app.close()


def test_a_replica_picks_up_a_new_calibration(
    tmp_path: Path, shared_app: Visage, pairs_csv: Path
) -> None:
    """Two cores on one data dir, as two processes sharing one database: a calibration
    stored through one reaches the other's threshold once its recheck interval passed."""
    home = tmp_path / "home"
    first = make_app(home, models=shared_app)
    second = Visage(Settings(home=home, database_url=database_url_of(home)))  # type: ignore[arg-type]
    second._analyzer = shared_app.analyzer
    try:
        second.calibration_recheck_s = 3600.0
        assert second.threshold == DEFAULT_THRESHOLD  # dlib's built-in calibration
        report = evaluate(first, pairs_csv, LFW, calibrate=True)
        stored = first.calibration
        assert first.threshold == stored.threshold_for(1e-3) == report.threshold
        assert stored.threshold_for(1e-3) != DEFAULT_THRESHOLD
        # Within its interval the replica keeps what it read; after it, the stored one.
        assert second.threshold == DEFAULT_THRESHOLD
        second.calibration_recheck_s = 0.0
        assert second.calibration == stored
        assert second.threshold == first.threshold
    finally:
        second.close()
        first.close()
