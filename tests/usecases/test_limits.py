"""The operating point: which threshold is in use and how often it errs, from one place."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from tests.conftest import make_app
from visage.core import Visage
from visage.gallery.matching import DEFAULT_THRESHOLD
from visage.store.meta import put_meta
from visage.usecases.evaluate import LAST_EVALUATION, EvalReport, OperatingPoint, StoredEvaluation
from visage.usecases.limits import DEFAULT_FMR, DEFAULT_FNMR, operating_point


def test_default_threshold_cites_the_lfw_measurement(fresh_app: Visage) -> None:
    point = operating_point(fresh_app)
    assert point.threshold == DEFAULT_THRESHOLD
    assert (point.fmr, point.fnmr) == (DEFAULT_FMR, DEFAULT_FNMR) and point.measured
    assert "LFW" in point.measured_on and "ONNX" in point.measured_on


def test_a_hand_set_threshold_is_not_measured_until_eval_runs(
    tmp_path: Path, shared_app: Visage
) -> None:
    core = make_app(tmp_path / "home", models=shared_app, match_threshold=0.95)
    try:
        point = operating_point(core)
        assert point.threshold == 0.95 and not point.measured
        assert "visage eval" in point.measured_on
        at_095 = OperatingPoint(target_fmr=0.01, threshold=0.95, fmr=0.011, fnmr=0.05)
        report = EvalReport(
            pairs=100, genuine=10, impostor=90, accuracy=0.99, fmr=0.0, fnmr=0.1,
            threshold=0.99, failures_to_acquire=0, images=20, images_without_face=[],
            operating_points=[at_095], seconds=1.0,
        )  # fmt: skip
        stored = StoredEvaluation(
            measured_at=datetime(2026, 11, 20, tzinfo=UTC),
            dataset="site-pairs.csv",
            model="dlib-resnet",
            report=report,
        )
        with core.store.session() as session:
            put_meta(session, LAST_EVALUATION, stored.model_dump_json().encode())
        measured = operating_point(core)
        assert (measured.fmr, measured.fnmr) == (0.011, 0.05)
        assert "site-pairs.csv" in measured.measured_on and "2026-11-20" in measured.measured_on
    finally:
        core.close()
