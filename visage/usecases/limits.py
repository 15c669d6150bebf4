"""How often the decision threshold errs: the measured false-match and false-non-match rates
at the threshold this installation uses, from one place, so that every screen that shows a
match (identify, verify, reviews) cites the same figures and where they were measured.

The source, best first: the latest ``visage eval`` on this installation (its overall figures
when it was run at the threshold in use, or one of its operating points at that threshold);
else the active model's calibration table (``visage eval --calibrate``, or SFace's built-in
lfw10 table) when the threshold is one of its rows; else, for dlib's ResNet at the calibrated
default threshold, the measurement made when that threshold was chosen (see
:mod:`visage.gallery.matching`); else nothing is known and the rates are None —
a threshold set by hand has not been measured until someone runs ``visage eval``.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from visage.core import Visage
from visage.gallery.matching import DEFAULT_THRESHOLD
from visage.usecases.evaluate import last_evaluation
from visage.vision.spec import DLIB_ID

DEFAULT_FMR = 0.000667
"""FMR at :data:`DEFAULT_THRESHOLD` on lfw10: 3 of 4,500 impostor pairs (re-measured
2026-11-26 with ``visage eval``: 0.000667)."""

DEFAULT_FNMR = 0.024444
"""FNMR at :data:`DEFAULT_THRESHOLD` on lfw10: 11 of 450 genuine pairs (re-measured
2026-11-26: 0.024444)."""

DEFAULT_MEASURED_ON = (
    "the 4,950 pairs of an LFW subset (10 people, 100 images; ../shared/faces/lfw10/pairs.csv),"
    " with dlib's ResNet embedder run on ONNX Runtime; the threshold was tuned on the same "
    "pairs, so expect higher error rates on your own images"
)

SAME_THRESHOLD = 5e-5
"""Thresholds closer than this count as the same (a stored figure is rounded)."""


class OperatingPoint(BaseModel):
    """The decision threshold and how often it errs, with where that was measured."""

    threshold: float = Field(description="calibrated score at or above which two faces match")
    fmr: float | None = Field(
        description="false-match rate at the threshold (None: not measured at this threshold)"
    )
    fnmr: float | None = Field(
        description="false-non-match rate at the threshold (None: not measured)"
    )
    measured_on: str = Field(description="which data, model and date the rates come from")

    @property
    def measured(self) -> bool:
        return self.fmr is not None and self.fnmr is not None


def operating_point(core: Visage) -> OperatingPoint:
    """The threshold in use and its measured FMR/FNMR (see the module docstring)."""
    threshold = core.threshold
    evaluation = last_evaluation(core)
    if evaluation is not None and evaluation.report.model in ("", core.model_id):
        report = evaluation.report
        where = (
            f"{report.pairs} labelled pairs of {evaluation.dataset}, model "
            f"{evaluation.model}, measured {evaluation.measured_at:%Y-%m-%d}"
        )
        if abs(report.threshold - threshold) < SAME_THRESHOLD:
            return OperatingPoint(
                threshold=threshold, fmr=report.fmr, fnmr=report.fnmr, measured_on=where
            )
        for point in report.operating_points:
            if abs(point.threshold - threshold) < SAME_THRESHOLD:
                return OperatingPoint(
                    threshold=threshold, fmr=point.fmr, fnmr=point.fnmr, measured_on=where
                )
    calibration = core.calibration
    for row in calibration.table:
        if abs(row.threshold - threshold) < SAME_THRESHOLD:
            when = f", {calibration.fitted_at:%Y-%m-%d}" if calibration.fitted_at else ""
            return OperatingPoint(
                threshold=threshold,
                fmr=row.fmr,
                fnmr=row.fnmr,
                measured_on=f"calibration of {calibration.model_id} on "
                f"{calibration.fitted_on}{when} (the threshold for FMR {row.target_fmr:g})",
            )
    if calibration.model_id == DLIB_ID and abs(threshold - DEFAULT_THRESHOLD) < SAME_THRESHOLD:
        return OperatingPoint(
            threshold=threshold,
            fmr=DEFAULT_FMR,
            fnmr=DEFAULT_FNMR,
            measured_on=DEFAULT_MEASURED_ON,
        )
    return OperatingPoint(
        threshold=threshold,
        fmr=None,
        fnmr=None,
        measured_on="not measured at this threshold: run `visage eval` on labelled pairs",
    )
