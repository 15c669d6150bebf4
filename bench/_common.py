"""Helpers shared by the benchmark scripts: test-data lookup, timing, output."""

from __future__ import annotations

import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    for c in (os.environ.get("VISAGE_TEST_DATA"), REPO.parent / "shared" / "faces"):
        if c and Path(c).is_dir():
            return Path(c)
    sys.exit("test data not found: set VISAGE_TEST_DATA or put shared/faces beside the repo")


def timed(fn: Callable[[], Any], repeat: int = 5, warmup: int = 1) -> float:
    """Median seconds of ``repeat`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def emit(result: dict[str, Any], as_json: bool, rows: list[tuple[str, str]]) -> None:
    if as_json:
        print(json.dumps(result, indent=2))
        return
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k:<{width}}  {v}")
