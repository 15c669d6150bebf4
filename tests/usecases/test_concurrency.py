"""The core is called from several threads at once: models load once, answers agree."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.conftest import PEOPLE_PURPOSE
from visage.config import Settings
from visage.core import Visage
from visage.usecases.identify import identify
from visage.usecases.verify import verify


def test_cold_app_under_concurrent_calls(enrolled_app: Visage, data: Path) -> None:
    cold = Visage(Settings(home=enrolled_app.home, num_threads=1))
    pairs = [
        (data / "people/barack_obama/1.jpg", data / "people/barack_obama/2.jpg"),
        (data / "people/joe_biden/1.jpg", data / "people/barack_obama/1.jpg"),
    ] * 4
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: verify(cold, *p), pairs))
        analyzers = list(pool.map(lambda _: id(cold.analyzer), range(8)))
        models = list(pool.map(lambda _: id(cold.analyzer.embedder.model), range(8)))
    assert [r.same for r in results] == [True, False] * 4
    assert len({r.score for r in results[::2]}) == 1
    assert len(set(analyzers)) == 1 and len(set(models)) == 1
    cold.close()


def test_identify_in_parallel_matches_serial(enrolled_app: Visage, data: Path) -> None:
    scenes = sorted((data / "scenes").iterdir()) * 3
    serial = [identify(enrolled_app, s, PEOPLE_PURPOSE) for s in scenes]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda s: identify(enrolled_app, s, PEOPLE_PURPOSE), scenes))
    assert [r.model_dump() for r in parallel] == [r.model_dump() for r in serial]
