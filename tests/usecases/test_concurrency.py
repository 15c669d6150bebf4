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
    # As many calls as workers: all four start at once on the cold core, which is the
    # race under test (more calls would only queue behind them, on loaded models).
    pairs = [
        (data / "people/barack_obama/1.jpg", data / "people/barack_obama/2.jpg"),
        (data / "people/joe_biden/1.jpg", data / "people/barack_obama/1.jpg"),
    ] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda p: verify(cold, *p), pairs))
        analyzers = list(pool.map(lambda _: id(cold.analyzer), range(8)))
        models = list(pool.map(lambda _: id(cold.analyzer.embedder.model), range(8)))
    assert [r.same for r in results] == [True, False] * 2
    assert len({r.score for r in results[::2]}) == 1
    assert len(set(analyzers)) == 1 and len(set(models)) == 1
    cold.close()


def test_identify_in_parallel_matches_serial(enrolled_app: Visage, data: Path) -> None:
    distinct = sorted((data / "scenes").iterdir())
    # Each scene once in series: the answer every parallel call of it must give, repeats
    # included (identify is deterministic, so a serial repeat would add no new answer).
    serial = {s: identify(enrolled_app, s, PEOPLE_PURPOSE).model_dump() for s in distinct}
    scenes = distinct * 3
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda s: identify(enrolled_app, s, PEOPLE_PURPOSE), scenes))
    assert [r.model_dump() for r in parallel] == [serial[s] for s in scenes]
