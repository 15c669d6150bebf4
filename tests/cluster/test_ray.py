"""Batch anonymisation on Ray (issue 15): a local Ray instance (``ray.init(num_cpus=2)``, one
per module: it takes seconds to start) anonymises the folder of :mod:`tests.batch_folder`
with one task per file, and every output is byte-identical to the run in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import ray

from tests.batch_folder import CORRUPT, GOOD, digests, leftovers, make_folder
from visage.config import Settings
from visage.core import Visage
from visage.media.redact import RedactOptions
from visage.usecases.batch import Job, RayWorker, anonymize_folder, batch_settings


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def test_ray_outputs_equal_the_local_run(
    cluster: None, data: Path, shared_app: Visage, tmp_path: Path
) -> None:
    folder = make_folder(data, tmp_path / "in")
    core = Visage(Settings(home=tmp_path / "none"))  # no data dir: workers need none either
    core._analyzer = shared_app.analyzer
    local = anonymize_folder(core, folder, tmp_path / "local")
    on_ray = anonymize_folder(core, folder, tmp_path / "ray", ray="auto")  # Ray already up
    assert on_ray.runner == "ray"
    assert [(i.path, i.status, i.frames, i.faces_masked) for i in on_ray.items] == [
        (i.path, i.status, i.frames, i.faces_masked) for i in local.items
    ]
    assert {i.path for i in on_ray.items if i.status == "failed"} == {CORRUPT}
    made = digests(tmp_path / "ray")
    assert sorted(made) == sorted(GOOD)
    assert made == digests(tmp_path / "local")  # byte for byte
    assert leftovers(tmp_path / "ray") == []
    again = anonymize_folder(core, folder, tmp_path / "ray", ray="auto")
    assert (again.anonymised, again.skipped, again.failed) == (0, 4, 1)


def test_a_worker_that_cannot_see_the_input_says_so(cluster: None, tmp_path: Path) -> None:
    core = Visage(Settings(home=tmp_path / "none"))
    settings = batch_settings(core, RedactOptions(), None, 23)
    worker = ray.remote(num_cpus=1)(RayWorker).remote(settings)
    job = Job(
        rel="x.mp4", source="/nowhere/x.mp4", output=str(tmp_path / "x.mp4"), settings=settings
    )
    item = ray.get(worker.run.remote(job))
    assert item.status == "failed" and "same path" in (item.reason or "")
