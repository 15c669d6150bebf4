"""Scores and the decision threshold.

The embedder's cosine similarities are squeezed into a narrow band (dlib's descriptors are
not centred: impostors score about 0.85, genuine pairs about 0.95), so we report a
calibrated score instead: a logistic function of the cosine, fitted on the 4,950 pairs of
``lfw10/pairs.csv`` with both classes weighted equally. It reads as the probability that
two faces are the same person under equal priors, on data like LFW.

The default threshold 0.925 (cosine 0.9150) was chosen for a false-match rate of at most
1e-3 on lfw10: there it measured FMR 0.0007 (3 of 4,500 impostor pairs), FNMR 0.024 and
accuracy 0.997. It was tuned on the same pairs it is reported on; `visage eval` on your own
labelled pairs gives the thresholds for FMR 1e-2 and 1e-3 there.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

CALIBRATION_SLOPE = 232.2689
CALIBRATION_INTERCEPT = -210.0075
DEFAULT_THRESHOLD = 0.925


def calibrate(cosine: float) -> float:
    """Calibrated score in [0, 1] for a cosine similarity."""
    z = CALIBRATION_SLOPE * cosine + CALIBRATION_INTERCEPT
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def calibrate_array(cosines: NDArray[np.float32]) -> NDArray[np.float64]:
    z = CALIBRATION_SLOPE * cosines.astype(np.float64) + CALIBRATION_INTERCEPT
    return np.asarray(0.5 * (1.0 + np.tanh(z / 2.0)), dtype=np.float64)


def cosine_for(score: float) -> float:
    """The cosine similarity at which the calibrated score equals ``score``."""
    score = min(max(score, 1e-12), 1 - 1e-12)
    return (math.log(score / (1 - score)) - CALIBRATION_INTERCEPT) / CALIBRATION_SLOPE
